//go:build unix

package config

import "syscall"

// syscallNonblock opens a FIFO without waiting for a writer, so that the
// file can be refused instead of blocking.
const syscallNonblock = syscall.O_NONBLOCK
