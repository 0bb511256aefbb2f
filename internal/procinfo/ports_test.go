package procinfo

import (
	"errors"
	"net"
	"os"
	"slices"
	"testing"
)

func TestPortHolders(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	pids, listening, err := PortHolders(port)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no port owner lookup on this platform")
	}
	if err == nil && listening && len(pids) == 0 && underWine() {
		t.Log("listening detected; wine does not report socket owners")
	} else if err != nil || !listening || !slices.Contains(pids, os.Getpid()) {
		t.Fatalf("PortHolders(%d) = %v, %v, %v; want this process (%d)", port, pids, listening, err, os.Getpid())
	}
	ln.Close()
	if _, listening, _ := PortHolders(port); listening {
		t.Fatalf("port %d still listening after close", port)
	}
}
