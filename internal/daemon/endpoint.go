package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/statedir"
)

// EndpointName is the file in the state directory where a running daemon
// says where it listens. Clients in other languages read it instead of
// re-implementing ipc.Path: on Windows the pipe's name is a hash of the
// absolute state directory, which a second implementation would get subtly
// wrong (case, separators, relative paths) and then look for a daemon that
// does not exist.
const EndpointName = "endpoint.json"

// EndpointVersion is the format of the endpoint file. A reader that finds
// another version must not guess what the fields mean.
const EndpointVersion = 1

// Transports of an endpoint.
const (
	TransportUnix = "unix" // Address is the path of a unix socket
	TransportPipe = "pipe" // Address is a Windows named pipe, \\.\pipe\…
)

// Endpoint is the content of the endpoint file and what
// `corral daemon --print-endpoint` prints.
type Endpoint struct {
	Version   int    `json:"version"`
	Transport string `json:"transport"`
	Address   string `json:"address"`
	// PID is the daemon that wrote the file; 0 (absent) for an endpoint
	// that was only computed, with no daemon behind it.
	PID int `json:"pid,omitempty"`
	// StateDir is the absolute state directory the endpoint belongs to.
	StateDir string `json:"state_dir,omitempty"`
}

// EndpointFor returns the endpoint a daemon of stateDir listens on; it
// starts and checks nothing.
func EndpointFor(stateDir string) Endpoint {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	t := TransportUnix
	if runtime.GOOS == "windows" {
		t = TransportPipe
	}
	return Endpoint{Version: EndpointVersion, Transport: t, Address: ipc.Path(abs), StateDir: abs}
}

// WriteEndpoint records, for clients, that daemon pid listens on
// stateDir's endpoint. Call it once the listener exists. The file is
// written whole under a temporary name and renamed into place, so a
// reader never sees half of it; it is created without following a
// symlink, and a symlink at its name is replaced, never written through.
func WriteEndpoint(stateDir string, pid int) error {
	e := EndpointFor(stateDir)
	e.PID = pid
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("daemon: endpoint: %w", err)
	}
	b = append(b, '\n')
	tmp := EndpointName + "." + strconv.Itoa(pid) + ".tmp"
	tmpPath := filepath.Join(stateDir, tmp)
	// A crashed daemon of the same pid may have left one; never reuse it.
	if err := os.Remove(tmpPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("daemon: endpoint: %w", err)
	}
	f, err := statedir.OpenFile(stateDir, tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("daemon: endpoint: %w", err)
	}
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(tmpPath)
		return fmt.Errorf("daemon: endpoint: write %s: %w", tmpPath, werr)
	}
	if err := renameRetry(tmpPath, filepath.Join(stateDir, EndpointName)); err != nil {
		os.Remove(tmpPath)
		return fmt.Errorf("daemon: endpoint: %w", err)
	}
	return nil
}

// renameRetry renames, retrying briefly on Windows, where a reader that
// has the target open (without FILE_SHARE_DELETE, as most runtimes open
// files) makes the replacing rename fail for that moment.
func renameRetry(from, to string) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = os.Rename(from, to); err == nil || runtime.GOOS != "windows" {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// ReadEndpoint reads the endpoint file of stateDir. A missing file is an
// error wrapping fs.ErrNotExist: no daemon has listened there since the
// last one ended cleanly. The file says nothing about whether its daemon
// is still alive: connecting does.
func ReadEndpoint(stateDir string) (Endpoint, error) {
	f, err := statedir.OpenFile(stateDir, EndpointName, os.O_RDONLY, 0)
	if err != nil {
		return Endpoint{}, fmt.Errorf("daemon: endpoint: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return Endpoint{}, fmt.Errorf("daemon: endpoint: %w", err)
	}
	var e Endpoint
	if err := json.Unmarshal(b, &e); err != nil {
		return Endpoint{}, fmt.Errorf("daemon: endpoint %s: %w", filepath.Join(stateDir, EndpointName), err)
	}
	if e.Version != EndpointVersion {
		return Endpoint{}, fmt.Errorf("daemon: endpoint %s: version %d, this corral reads version %d", filepath.Join(stateDir, EndpointName), e.Version, EndpointVersion)
	}
	if (e.Transport != TransportUnix && e.Transport != TransportPipe) || e.Address == "" {
		return Endpoint{}, fmt.Errorf("daemon: endpoint %s: transport %q, address %q: not an endpoint", filepath.Join(stateDir, EndpointName), e.Transport, e.Address)
	}
	return e, nil
}

// RemoveEndpoint removes the endpoint file if daemon pid wrote it. Call it
// before the state directory's lock is released, so that a successor's
// file is never the one removed.
func RemoveEndpoint(stateDir string, pid int) error {
	e, err := ReadEndpoint(stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil && e.PID != pid {
		return nil
	}
	// Ours, or unreadable (then no client can use it either).
	if err := os.Remove(filepath.Join(stateDir, EndpointName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("daemon: endpoint: %w", err)
	}
	return nil
}
