package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
)

// imageCmd writes the synthetic disk image pair, deterministically: a
// base of MiB 4 KiB blocks (a third random, a third zero, a third
// text-like) and a target where a share of the blocks is overwritten in
// place with new random bytes and insert MiB of random bytes are inserted
// at the middle. Both files are written in one streaming pass.
func imageCmd(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	basePath := fs.String("base", "", "base image to write")
	targetPath := fs.String("target", "", "target image to write")
	mib := fs.Int("mib", 1024, "base size in MiB")
	changed := fs.Float64("changed", 0.01, "share of 4 KiB blocks changed in place")
	insertMiB := fs.Int("insert-mib", 1, "MiB inserted at the middle")
	if err := parse(fs, args, "base", "target"); err != nil {
		return err
	}
	bf, err := os.Create(*basePath)
	if err != nil {
		return err
	}
	defer bf.Close()
	tf, err := os.Create(*targetPath)
	if err != nil {
		return err
	}
	defer tf.Close()
	bw, tw := bufio.NewWriterSize(bf, 1<<20), bufio.NewWriterSize(tf, 1<<20)

	const block = 4096
	blocks := *mib * (1 << 20) / block
	content := rand.New(rand.NewPCG(1, 2))
	choice := rand.New(rand.NewPCG(3, 4))
	fresh := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, block)
	newBuf := make([]byte, block)
	var nChanged int
	for i := 0; i < blocks; i++ {
		if i == blocks/2 {
			for j := 0; j < *insertMiB*(1<<20)/block; j++ {
				fill(fresh, newBuf)
				tw.Write(newBuf)
			}
		}
		switch i % 3 {
		case 0:
			fill(content, buf)
		case 1:
			clear(buf)
		default:
			text(content, buf)
		}
		bw.Write(buf)
		if choice.Float64() < *changed {
			fill(fresh, newBuf)
			tw.Write(newBuf)
			nChanged++
		} else {
			tw.Write(buf)
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Printf("image_blocks %d\nimage_changed_blocks %d\nimage_inserted_bytes %d\n", blocks, nChanged, *insertMiB<<20)
	return nil
}

func fill(r *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

// text fills b with log-like lines: compressible, but not trivially.
func text(r *rand.Rand, b []byte) {
	words := [...]string{"INFO", "WARN", "sync", "artifact", "mirror", "snapshot", "lease", "tenant", "ok", "retry"}
	p := 0
	for p < len(b) {
		w := words[r.IntN(len(words))]
		p += copy(b[p:], w)
		if p < len(b) {
			b[p] = " \n"[r.IntN(8)/7]
			p++
		}
		if p < len(b) && r.IntN(4) == 0 {
			p += copy(b[p:], strconv.Itoa(r.IntN(100000)))
		}
	}
}
