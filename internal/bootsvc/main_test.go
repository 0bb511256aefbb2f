package bootsvc

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// A service test's manager runs this binary as the corral daemon.
	if len(os.Args) > 1 && os.Args[len(os.Args)-1] == "daemon" {
		os.Exit(fakeDaemon(os.Args[1 : len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

// tempDir is t.TempDir but for its cleanup: under wine, RemoveAll fails
// ("Invalid function") on what t.TempDir made, which would fail a test
// for a cleanup detail.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bootsvc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
