package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// peakRSS runs a command with inherited stdio and then writes to the
// file named by -o (stderr without it), so the child's output stays
// parseable:
//
//	peakrss_kib <max resident set size of the child, KiB>
//	wall_seconds <elapsed>
//
// The kernel's ru_maxrss is exact, where polling /proc would miss a
// short peak. The exit status is the child's.
func peakRSS(args []string) error {
	fs := flag.NewFlagSet("peakrss", flag.ContinueOnError)
	out := fs.String("o", "", "write the figures to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		return errors.New("no command")
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Forward SIGINT/SIGTERM so that a script's trap stops the child too.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", args[0], err)
	}
	go func() {
		for s := range sig {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	wall := time.Since(start)
	if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			line := fmt.Sprintf("peakrss_kib %d\nwall_seconds %.3f\n", ru.Maxrss, wall.Seconds())
			if *out == "" {
				fmt.Fprint(os.Stderr, line)
			} else if werr := os.WriteFile(*out, []byte(line), 0o644); werr != nil {
				return fmt.Errorf("write %s: %w", *out, werr)
			}
		}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.ExitCode())
	}
	return err
}
