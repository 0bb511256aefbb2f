package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &File{path: path, f: f, size: st.Size()}, nil
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
			if f, err := os.OpenFile(j.path, os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
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
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("journal: read %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e Event
		if json.Unmarshal(line, &e) != nil {
			torn++
			continue
		}
		events = append(events, e)
	}
	return events, torn, sc.Err()
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
func Compact(path string, keep int) error {
	events, _, err := ReadFile(path)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, in := range Live(events) {
		live[in.ID] = true
	}
	var out []Event
	cut := max(0, len(events)-keep)
	for i, e := range events {
		if i >= cut || (e.Kind == Spawn && live[e.Instance]) {
			out = append(out, e)
		}
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("journal: compact: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, e := range out {
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
		return fmt.Errorf("journal: compact: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("journal: compact: %w", err)
	}
	return nil
}
