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

// BenchmarkPortHolders: the preflight's lookup of a free port, on the path
// of every start and restart.
func BenchmarkPortHolders(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	for i := 0; i < b.N; i++ {
		if _, listening, err := PortHolders(port); listening || err != nil {
			if errors.Is(err, errors.ErrUnsupported) {
				b.Skip("no port owner lookup on this platform")
			}
			b.Fatal(listening, err)
		}
	}
}

func TestPortHoldersIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	pids, listening, err := PortHolders(port)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no port owner lookup on this platform")
	}
	if underWine() {
		t.Skip("wine does not report socket owners")
	}
	if err != nil || !listening || !slices.Contains(pids, os.Getpid()) {
		t.Fatalf("PortHolders(%d) on [::1] = %v, %v, %v", port, pids, listening, err)
	}
}
