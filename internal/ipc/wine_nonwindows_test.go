//go:build !windows

package ipc

func underWine() bool { return false }
