package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/corral-sh/corral/internal/statedir"
)

// FileName is the journal's name in the state directory.
const FileName = "journal.jsonl"

// File is the append-only journal on disk: one JSON event per line. Spawns
// are written with fsync before the program runs; other events are written
// without waiting for the disk.
type File struct {
	path string
	mu   sync.Mutex // guards f, size, compactAbove and keep
	f    *os.File
	size int64

	compactAbove int64
	keep         int
}

// OpenFile opens (creating) the journal for appending.
func OpenFile(path string) (*File, error) {
	// Never through a symlink: whoever planted one would choose what a
	// (root) daemon appends to.
	f, err := statedir.OpenFile(filepath.Dir(path), filepath.Base(path), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	size := st.Size()
	if size > 0 && !endsInNewline(path) {
		// A write a crash cut short: end its line, or the next record
		// would be glued to it and lost, and the torn line would sit
		// mid-file as damage at the next start.
		if n, err := f.Write([]byte("\n")); err == nil {
			size += int64(n)
		}
	}
	return &File{path: path, f: f, size: size}, nil
}

func endsInNewline(path string) bool {
	f, err := statedir.OpenFile(filepath.Dir(path), filepath.Base(path), os.O_RDONLY, 0)
	if err != nil {
		return true
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return true
	}
	b := make([]byte, 1)
	_, err = f.ReadAt(b, st.Size()-1)
	return err != nil || b[0] == '\n'
}

// Path returns the file's path.
func (j *File) Path() string { return j.path }

// CompactAt makes Append compact the file in place once it grows past
// bytes, keeping the spawn records of live instances and the last keep
// events (0: never).
func (j *File) CompactAt(bytes int64, keep int) {
	j.mu.Lock()
	j.compactAbove, j.keep = bytes, keep
	j.mu.Unlock()
}

// Append writes e; with sync it returns only once e is on disk.
func (j *File) Append(e Event, sync bool) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.compactAbove > 0 && j.size > j.compactAbove {
		// Under the lock no write can interleave with the rewrite.
		if err := Compact(j.path, j.keep); err == nil {
			if f, err := statedir.OpenFile(filepath.Dir(j.path), filepath.Base(j.path), os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
				j.f.Close()
				j.f = f
				if st, err := f.Stat(); err == nil {
					j.size = st.Size()
				}
			}
		}
	}
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("journal: write %s: %w", j.path, err)
	}
	j.size += int64(len(b))
	if sync {
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("journal: sync %s: %w", j.path, err)
		}
	}
	return nil
}

// Forget drops the spawn records of the instances in ids from the file (a
// reap found nothing left of them), keeping the last keep events otherwise.
func (j *File) Forget(ids map[string]bool, keep int) error {
	if len(ids) == 0 {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := compact(j.path, keep, ids); err != nil {
		return err
	}
	f, err := statedir.OpenFile(filepath.Dir(j.path), filepath.Base(j.path), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("journal: reopen %s: %w", j.path, err)
	}
	j.f.Close()
	j.f = f
	if st, err := f.Stat(); err == nil {
		j.size = st.Size()
	}
	return nil
}

// Size returns the bytes written so far.
func (j *File) Size() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.size
}

// Size returns the size of the journal at path (0 if missing).
func Size(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// Close closes the file.
func (j *File) Close() error { return j.f.Close() }

// ReadFile reads every event of the journal at path. A line that cannot be
// parsed (the last one, torn by a crash mid-write, or any damaged one) is
// skipped and counted in torn. A missing file is an empty journal.
func ReadFile(path string) (events []Event, torn int, err error) {
	events, d, err := Check(path)
	return events, d.Lines, err
}

// Damage describes the lines of a journal that could not be read.
type Damage struct {
	// Lines is how many lines were skipped.
	Lines int
	// TailOnly: the only damage is a last line that starts as a record
	// does — a write a crash cut short, which corral expects and which
	// hides nothing (a spawn record is on disk before its program runs).
	TailOnly bool
}

// Damaged says whether the file was damaged by more than a crash: lines
// in the middle, bytes that no writer of corral's produces (NULs, binary).
func (d Damage) Damaged() bool { return d.Lines > 0 && !d.TailOnly }

// Check reads the journal at path like ReadFile and says how it is damaged.
func Check(path string) (events []Event, d Damage, err error) {
	f, err := statedir.OpenFile(filepath.Dir(path), filepath.Base(path), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, d, nil
	}
	if err != nil {
		return nil, d, fmt.Errorf("journal: read %s: %w", path, err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, d, fmt.Errorf("journal: read %s: %w", path, err)
	}
	lastBad := false
	var lastBadLine []byte
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e Event
		if json.Unmarshal(line, &e) != nil {
			d.Lines++
			lastBad, lastBadLine = true, line
			continue
		}
		lastBad = false
		events = append(events, e)
	}
	d.TailOnly = d.Lines == 1 && lastBad && bytes.HasPrefix(lastBadLine, []byte(`{"`)) &&
		utf8.Valid(lastBadLine) && bytes.IndexByte(lastBadLine, 0) < 0
	return events, d, nil
}

// KeepAside renames a damaged journal out of the way (it is kept for the
// user to look at, never deleted) and writes events, what could be read
// of it, as the new journal. It returns the name it was kept under.
func KeepAside(path string, events []Event, now time.Time) (string, error) {
	aside := filepath.Join(filepath.Dir(path), fmt.Sprintf("journal.damaged-%s.jsonl", now.UTC().Format("20060102T150405.000Z")))
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("journal: keep the damaged journal aside: %w", err)
	}
	if err := Rewrite(path, events); err != nil {
		return aside, err
	}
	return aside, nil
}

// DamagedFiles lists the journals kept aside in dir.
func DamagedFiles(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "journal.damaged-*.jsonl"))
	return m
}

// Instance is what the journal knows of one spawned instance.
type Instance struct {
	ID      string
	Service string
	Cgroup  string
	PID     int
	Start   uint64
	Boot    string
	Cmdline []string
	// Ended: its tree was verified empty (stopped) or reaped.
	Ended bool
	// Unjournaled: found by its cgroup or its members' markers, with no
	// live record in the journal (a damaged or lost journal).
	Unjournaled bool
}

// Fold returns every instance the events mention, by id: the registry of
// what may still be alive is the instances not Ended.
func Fold(events []Event) map[string]*Instance {
	m := map[string]*Instance{}
	for _, e := range events {
		if e.Instance == "" {
			continue
		}
		in := m[e.Instance]
		switch e.Kind {
		case Spawn:
			if in == nil {
				in = &Instance{ID: e.Instance}
				m[e.Instance] = in
			}
			in.Service, in.Cgroup, in.PID, in.Start, in.Boot, in.Cmdline = e.Service, e.Cgroup, e.PID, e.Start, e.Boot, e.Cmdline
		case Stopped, Reaped:
			if in != nil {
				in.Ended = true
			}
		}
	}
	return m
}

// Live returns the instances not ended.
func Live(events []Event) []*Instance {
	var out []*Instance
	for _, in := range Fold(events) {
		if !in.Ended {
			out = append(out, in)
		}
	}
	return out
}

// Compact rewrites the journal at path keeping the spawn records of live
// instances and the last keep events, atomically (write, fsync, rename).
func Compact(path string, keep int) error { return compact(path, keep, nil) }

// compact is Compact that also drops the spawn records of the instances
// in forget: those a reap found nothing left of, which would otherwise be
// looked at again at every start.
func compact(path string, keep int, forget map[string]bool) error {
	events, _, err := ReadFile(path)
	if err != nil {
		return err
	}
	return Rewrite(path, Compacted(events, keep, forget))
}

// Compacted returns events with only the spawn records of live instances
// and the last keep events, less the spawn records of the instances in
// forget (those a reap found nothing left of: without its spawn record an
// instance is no longer one the journal says may be alive, while what
// happened to it stays).
func Compacted(events []Event, keep int, forget map[string]bool) []Event {
	live := map[string]bool{}
	for _, in := range Live(events) {
		live[in.ID] = true
	}
	var out []Event
	cut := max(0, len(events)-keep)
	for i, e := range events {
		if e.Kind == Spawn && forget[e.Instance] {
			continue
		}
		if i >= cut || (e.Kind == Spawn && live[e.Instance]) {
			out = append(out, e)
		}
	}
	return out
}

// Rewrite replaces the journal at path with events, atomically (write,
// fsync, rename), never through a symlink.
func Rewrite(path string, events []Event) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := statedir.OpenFile(filepath.Dir(tmp), filepath.Base(tmp), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("journal: rewrite: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, e := range events {
		enc.Encode(e)
	}
	if err := w.Flush(); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("journal: rewrite: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("journal: rewrite: %w", err)
	}
	return nil
}
