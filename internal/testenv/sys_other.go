//go:build !linux

package testenv

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }

func xattrOK(string) bool { return true }

// processAlive cannot tell here, so stale temp dirs are kept.
func processAlive(int) bool { return true }
