//go:build unix

package config

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A FIFO (or a device) as env_file is refused, not read: reading it
// could block the load, or a start, forever.
func TestEnvFileFIFORefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.env")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	_, err := Parse(filepath.Join(dir, "c.toml"), "[services.a]\ncommand = [\"x\"]\nenv_file = \"pipe.env\"\n")
	if err == nil || !strings.Contains(err.Error(), "services.a.env_file: "+fifo+" is not a regular file (p---------), and only a regular file is read") {
		t.Fatalf("got %v", err)
	}
}
