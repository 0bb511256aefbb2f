package daemon

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/corral-sh/corral/internal/ipc"
)

// tempDir is t.TempDir without its failing cleanup: under wine, Go's
// RemoveAll of a file a moment ago renamed fails ("Invalid function").
func tempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "corral-endpoint-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestEndpointRoundTrip(t *testing.T) {
	dir := tempDir(t)
	if err := WriteEndpoint(dir, 4242); err != nil {
		t.Fatal(err)
	}
	e, err := ReadEndpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := EndpointFor(dir)
	want.PID = 4242
	if e != want {
		t.Fatalf("read %+v, want %+v", e, want)
	}
	if e.Address != ipc.Path(dir) {
		t.Fatalf("address %q, the daemon listens on %q", e.Address, ipc.Path(dir))
	}
	wantTransport := TransportUnix
	if runtime.GOOS == "windows" {
		wantTransport = TransportPipe
	}
	if e.Transport != wantTransport {
		t.Fatalf("transport %q on %s", e.Transport, runtime.GOOS)
	}
	// The format other languages read: exactly these keys.
	b, _ := os.ReadFile(filepath.Join(dir, EndpointName))
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "transport", "address", "pid", "state_dir"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("endpoint file %s has no %q", b, k)
		}
	}
	if runtime.GOOS != "windows" {
		st, _ := os.Stat(filepath.Join(dir, EndpointName))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", st.Mode().Perm())
		}
	}
	// Nothing left under a temporary name.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("state directory holds %d entries, want only %s: %v", len(ents), EndpointName, ents)
	}
}

func TestEndpointRewriteReplaces(t *testing.T) {
	dir := tempDir(t)
	if err := WriteEndpoint(dir, 1); err != nil {
		t.Fatal(err)
	}
	if err := WriteEndpoint(dir, 2); err != nil {
		t.Fatal(err)
	}
	e, err := ReadEndpoint(dir)
	if err != nil || e.PID != 2 {
		t.Fatalf("after a second write: %+v, %v", e, err)
	}
}

func TestEndpointMissingIsNotExist(t *testing.T) {
	_, err := ReadEndpoint(tempDir(t))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestEndpointRejectsOtherVersions(t *testing.T) {
	dir := tempDir(t)
	for _, body := range []string{
		`{"version":2,"transport":"unix","address":"/x"}`,
		`{"version":1,"transport":"tcp","address":"127.0.0.1:1"}`,
		`{"version":1,"transport":"unix","address":""}`,
		`{"version":1,`,
	} {
		os.WriteFile(filepath.Join(dir, EndpointName), []byte(body), 0o600)
		if e, err := ReadEndpoint(dir); err == nil {
			t.Errorf("%s: read as %+v, want an error", body, e)
		}
	}
}

func TestEndpointRemoveOnlyOwn(t *testing.T) {
	dir := tempDir(t)
	if err := WriteEndpoint(dir, 7); err != nil {
		t.Fatal(err)
	}
	if err := RemoveEndpoint(dir, 8); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEndpoint(dir); err != nil {
		t.Fatalf("another daemon's removal took the file: %v", err)
	}
	if err := RemoveEndpoint(dir, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEndpoint(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after its own removal: %v", err)
	}
	if err := RemoveEndpoint(dir, 7); err != nil {
		t.Fatalf("removing a missing file: %v", err)
	}
}

func TestEndpointNeverWritesThroughSymlink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need a privilege on Windows")
	}
	dir, other := tempDir(t), tempDir(t)
	victim := filepath.Join(other, "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	if err := os.Symlink(victim, filepath.Join(dir, EndpointName)); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEndpoint(dir); err == nil {
		t.Fatal("read through a symlink")
	}
	if err := WriteEndpoint(dir, 3); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatalf("the symlink's target was written: %q", b)
	}
	st, err := os.Lstat(filepath.Join(dir, EndpointName))
	if err != nil || !st.Mode().IsRegular() {
		t.Fatalf("endpoint file is not a regular file after the write: %v, %v", st, err)
	}
	// A symlink planted at the temporary name is not followed either.
	tmp := filepath.Join(dir, EndpointName+".9.tmp")
	os.Symlink(victim, tmp)
	if err := WriteEndpoint(dir, 9); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatalf("the temporary name's symlink target was written: %q", b)
	}
}
