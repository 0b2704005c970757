// Command deltatool is the Go helper of bench/delta.sh: it builds and
// applies deltas with internal/delta (one process per step, so that the
// script can record each step's peak RSS), generates the synthetic disk
// image pair, and measures the air-gap bundle of a new release through
// the control plane's real export (bundle). Each subcommand prints
// machine-readable "key value" lines on stdout.
//
//	deltatool build -base B -target T -o DELTA [-segment BYTES -dict BYTES -level 1..4]
//	deltatool apply -base B -delta DELTA -o OUT [-trust-base -no-sync]
//	deltatool inspect DELTA
//	deltatool image -base B -target T [-mib 1024 -changed 0.01 -insert-mib 1]
//	deltatool bundle -base B -target T -dir D [-import=false]
//
// DELTATOOL_MEMPROFILE=FILE writes a heap profile at exit,
// DELTATOOL_CPUPROFILE=FILE a CPU profile of the run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if p := os.Getenv("DELTATOOL_CPUPROFILE"); p != "" {
		if f, ferr := os.Create(p); ferr == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = buildCmd(ctx, os.Args[2:])
	case "apply":
		err = applyCmd(ctx, os.Args[2:])
	case "inspect":
		err = inspectCmd(os.Args[2:])
	case "image":
		err = imageCmd(os.Args[2:])
	case "bundle":
		err = bundleCmd(ctx, os.Args[2:])
	default:
		usage()
	}
	if p := os.Getenv("DELTATOOL_MEMPROFILE"); p != "" {
		if f, ferr := os.Create(p); ferr == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "deltatool %s: %v\n", os.Args[1], err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: deltatool build|apply|inspect|image|bundle [flags]")
	os.Exit(2)
}

func parse(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, name := range required {
		if fs.Lookup(name).Value.String() == "" {
			return fmt.Errorf("-%s is required", name)
		}
	}
	return nil
}
