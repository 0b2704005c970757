// Command benchtool holds the Go helpers of the benchmark scripts under
// bench/: measuring a child's peak RSS, filling an S3 bucket with signed
// artifacts for a mirror to sync, the plain parallel download the sync is
// compared with, and the signed update-check tenant imported through a
// bundle. Each subcommand prints machine-readable "key value" lines.
//
//	benchtool peakrss -- CMD ARGS…
//	benchtool s3fill -endpoint H:P -access K -secret S -bucket B -sizes 1,64,128x16
//	benchtool s3get -endpoint H:P -access K -secret S -bucket B -prefix artifacts/ -concurrency 4 -dir D
//	benchtool updates -bundle FILE
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "peakrss":
		err = peakRSS(os.Args[2:])
	case "s3fill":
		err = s3Fill(os.Args[2:])
	case "s3get":
		err = s3Get(os.Args[2:])
	case "updates":
		err = updates(os.Args[2:])
	case "events":
		err = events(os.Args[2:])
	case "tufroot":
		err = tufRoot(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool peakrss|s3fill|s3get|updates|events|tufroot [flags]")
	os.Exit(2)
}
