package logs

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/corral-sh/corral/internal/statedir"
)

// Rotation says when a log file is rotated and what is kept of it.
type Rotation struct {
	// MaxSize is the size in bytes past which the file is rotated (a line
	// is never split between two files, so a file may pass it by one write).
	MaxSize int64
	// Keep is how many rotated copies are kept (0: none; the file starts
	// over empty).
	Keep int
	// Compress gzips the rotated copies (NAME-<time>.log.gz).
	Compress bool
}

// DefaultRotation is what a service's file gets unless the configuration
// says otherwise: 10 MB, three copies, uncompressed.
func DefaultRotation() Rotation { return Rotation{MaxSize: 10_000_000, Keep: 3} }

// File is an append-only file in a state directory, rotated by size: at
// MaxSize it is renamed NAME-<UTC time>.log (compressed in the background
// when asked), a new NAME.log is started, and the oldest copies beyond Keep
// are removed. It never writes through a symlink. Safe for concurrent use.
type File struct {
	dir, name string // name: "web.log"

	// mu guards the fields below.
	mu       sync.Mutex
	f        *os.File
	size     int64
	rot      Rotation
	retryAt  int64 // a failed rotation is tried again past this size
	onRotate func(*os.File)
	now      func() time.Time

	compressing sync.WaitGroup
	// pruneMu serializes the removal of old copies (rotation and the
	// compressors both prune).
	pruneMu sync.Mutex
}

// OpenFile opens (creating it, mode 0600) the log file path, appending,
// with rotation r (DefaultRotation when r.MaxSize is 0). It refuses a path
// whose file is a symlink or not a regular file.
func OpenFile(path string, r Rotation) (*File, error) {
	if r.MaxSize <= 0 {
		r = DefaultRotation()
	}
	if err := statedir.Refuse(path); err != nil {
		return nil, err
	}
	lf := &File{dir: filepath.Dir(path), name: filepath.Base(path), rot: r, now: time.Now}
	// A compression an earlier process did not finish (it exited): its
	// plain copy is still there, and read as it is. (Service names have no
	// pattern characters.)
	if tmps, err := filepath.Glob(filepath.Join(lf.dir, strings.TrimSuffix(lf.name, ".log")+"-*.log.gz.tmp")); err == nil {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	f, err := lf.open(false)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("logs: %w", err)
	}
	lf.f, lf.size = f, st.Size()
	return lf, nil
}

func (lf *File) open(truncate bool) (*os.File, error) {
	flag := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if truncate {
		flag |= os.O_TRUNC
	}
	f, err := statedir.OpenFile(lf.dir, lf.name, flag, 0o600)
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	return f, nil
}

// Path is the file's path.
func (lf *File) Path() string { return filepath.Join(lf.dir, lf.name) }

// SetRotation changes the rotation from the next write on.
func (lf *File) SetRotation(r Rotation) {
	if r.MaxSize <= 0 {
		r = DefaultRotation()
	}
	lf.mu.Lock()
	lf.rot, lf.retryAt = r, 0
	lf.mu.Unlock()
}

// OnRotate sets fn to be called with the new file after each rotation
// (daemon.log points its process's stdout and stderr at it). It runs with
// the file's lock held: it must not write to it.
func (lf *File) OnRotate(fn func(*os.File)) {
	lf.mu.Lock()
	lf.onRotate = fn
	lf.mu.Unlock()
}

// Current is the open file (for stdio redirection; do not close it).
func (lf *File) Current() *os.File {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	return lf.f
}

// Size is the current file's size as written through lf.
func (lf *File) Size() int64 {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	return lf.size
}

// Write appends p whole, rotating first when p would take the file past
// MaxSize (a file that is empty takes p whatever its size).
func (lf *File) Write(p []byte) (int, error) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.f == nil {
		return 0, errors.New("logs: write to a closed log file")
	}
	if lf.size > 0 && lf.size+int64(len(p)) > lf.rot.MaxSize && lf.size >= lf.retryAt {
		if err := lf.rotate(); err != nil {
			// Kept writing where it was rather than lose output (on
			// Windows, another process holding the file open stops the
			// rename); tried again once a tenth of MaxSize more is written.
			lf.retryAt = lf.size + max(lf.rot.MaxSize/10, 1)
		}
	}
	n, err := lf.f.Write(p)
	lf.size += int64(n)
	return n, err
}

// rotate renames the file to a copy and starts a new one. Called with mu.
func (lf *File) rotate() error {
	path := lf.Path()
	if lf.rot.Keep == 0 {
		f, err := lf.open(true)
		if err != nil {
			return err
		}
		lf.f.Close()
		lf.f, lf.size = f, 0
		lf.rotated(f)
		lf.prune(0)
		return nil
	}
	backup := lf.backupName()
	// Closed first: Windows renames no file that is open.
	lf.f.Close()
	renameErr := os.Rename(path, filepath.Join(lf.dir, backup))
	f, err := lf.open(false)
	if err != nil {
		lf.f = nil
		return err
	}
	lf.f = f
	if renameErr != nil {
		if st, err := f.Stat(); err == nil {
			lf.size = st.Size()
		}
		return fmt.Errorf("logs: rotate %s: %w", path, renameErr)
	}
	lf.size = 0
	lf.rotated(f)
	if lf.rot.Compress {
		lf.compressing.Add(1)
		go func() {
			defer lf.compressing.Done()
			compress(lf.dir, backup)
			lf.mu.Lock()
			keep := lf.rot.Keep
			lf.mu.Unlock()
			lf.prune(keep)
		}()
		return nil
	}
	lf.prune(lf.rot.Keep)
	return nil
}

func (lf *File) rotated(f *os.File) {
	if lf.onRotate != nil {
		lf.onRotate(f)
	}
}

// backupName is a copy's name for now, one that no copy has yet.
func (lf *File) backupName() string {
	base := strings.TrimSuffix(lf.name, ".log")
	t := lf.now().UTC()
	for {
		name := base + "-" + t.Format(backupLayout) + ".log"
		_, err1 := os.Lstat(filepath.Join(lf.dir, name))
		_, err2 := os.Lstat(filepath.Join(lf.dir, name+".gz"))
		if errors.Is(err1, fs.ErrNotExist) && errors.Is(err2, fs.ErrNotExist) {
			return name
		}
		t = t.Add(time.Millisecond)
	}
}

// prune removes the oldest copies beyond keep.
func (lf *File) prune(keep int) {
	lf.pruneMu.Lock()
	defer lf.pruneMu.Unlock()
	old := backups(lf.dir, strings.TrimSuffix(lf.name, ".log"))
	for _, name := range old[min(keep, len(old)):] {
		plain := filepath.Join(lf.dir, strings.TrimSuffix(name, ".gz"))
		os.Remove(plain)
		os.Remove(plain + ".gz")
	}
}

// compress gzips dir/name into name.gz and removes name; on a failure the
// plain copy stays.
func compress(dir, name string) {
	src, err := statedir.OpenFile(dir, name, os.O_RDONLY, 0)
	if err != nil {
		return
	}
	defer src.Close()
	tmp := name + ".gz.tmp"
	dst, err := statedir.OpenFile(dir, tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	zw, _ := gzip.NewWriterLevel(dst, gzip.BestSpeed)
	_, err = io.Copy(zw, src)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(filepath.Join(dir, tmp), filepath.Join(dir, name+".gz"))
	}
	if err != nil {
		os.Remove(filepath.Join(dir, tmp))
		return
	}
	src.Close()
	os.Remove(filepath.Join(dir, name))
}

// Close closes the file, once the copies being compressed are done.
func (lf *File) Close() error {
	lf.mu.Lock()
	f := lf.f
	lf.f = nil
	lf.mu.Unlock()
	lf.compressing.Wait()
	if f == nil {
		return nil
	}
	return f.Close()
}
