//go:build !linux

package testenv

import (
	"syscall"
	"time"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

func xattrOK(string) bool { return true }

// processAlive cannot tell here, so stale temp dirs are kept.
func processAlive(int) bool { return true }

// ProcessCPU is not measured here (0).
func ProcessCPU() time.Duration { return 0 }
