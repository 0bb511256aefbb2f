package gpu

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/corral-sh/corral/internal/reaper"
)

// ErrUnavailable is returned when no nvidia-smi is installed: a machine
// without an NVIDIA GPU, or without its tools. Not a failure.
var ErrUnavailable = errors.New("gpu: nvidia-smi not found")

// Usage is the GPU memory in bytes used by each pid (summed over GPUs: a
// process may hold memory on several).
type Usage map[int]int64

// Sum returns the memory used by pids, and how many of them use any.
func (u Usage) Sum(pids []int) (bytes int64, procs int) {
	for _, p := range pids {
		if b, ok := u[p]; ok {
			bytes += b
			procs++
		}
	}
	return bytes, procs
}

// Query is what nvidia-smi is asked: compute processes (CUDA, which is
// what PyTorch uses), as CSV without units (MiB).
var Query = []string{"--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"}

// Parse reads nvidia-smi's answer to Query. Lines whose memory is not a
// number ("[N/A]": a process of another container, or a driver that does
// not account per process) list the pid with 0 bytes: it holds the GPU,
// how much is unknown.
func Parse(out []byte) (Usage, error) {
	u := Usage{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "No running") {
			continue
		}
		pidS, memS, ok := strings.Cut(line, ",")
		if !ok {
			return nil, fmt.Errorf("gpu: nvidia-smi line %d: %q is not \"pid, MiB\"", n, line)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(pidS))
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("gpu: nvidia-smi line %d: %q: no pid", n, line)
		}
		mib, err := strconv.ParseInt(strings.TrimSpace(memS), 10, 64)
		if err != nil || mib < 0 {
			mib = 0
		}
		u[pid] += mib << 20
	}
	return u, sc.Err()
}

// Reader runs nvidia-smi at most once per TTL: it takes 50–300 ms, and a
// status, a dashboard refresh and a scrape may all ask within a second.
// The zero value is ready to use.
type Reader struct {
	// Path is the nvidia-smi to run; "" looks it up on PATH at each
	// refresh (it may be installed after the daemon started).
	Path string
	// TTL is how long an answer is reused (default 2s).
	TTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Timeout bounds one run (default 5s): a hung driver must not hang
	// a status.
	Timeout time.Duration

	mu   sync.Mutex // guards the fields below; held across a run so that concurrent callers share it
	at   time.Time
	last Usage
	err  error
}

// Usage returns the current per-process usage, or ErrUnavailable.
func (r *Reader) Usage(ctx context.Context) (Usage, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	ttl := r.TTL
	if ttl <= 0 {
		ttl = 2 * time.Second
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.at.IsZero() && now().Sub(r.at) < ttl {
		return r.last, r.err
	}
	r.last, r.err = r.run(ctx)
	r.at = now()
	return r.last, r.err
}

// Refresh runs nvidia-smi now, whatever the cache holds, and keeps the
// answer for the others: what a stop checks its release against must be
// read after the stop.
func (r *Reader) Refresh(ctx context.Context) (Usage, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last, r.err = r.run(ctx)
	r.at = now()
	return r.last, r.err
}

func (r *Reader) run(ctx context.Context) (Usage, error) {
	path := r.Path
	if path == "" {
		p, err := exec.LookPath("nvidia-smi")
		if err != nil {
			return nil, ErrUnavailable
		}
		path = p
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, Query...)
	cmd.Stderr = &stderr
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	// Our own child, waited for here: never a stray of a tree, nor reaped
	// by the daemon's reaper (in init mode it reaps every other child).
	spawned := reaper.Spawning()
	err := cmd.Start()
	if err == nil {
		reaper.Protect(cmd.Process.Pid)
	}
	spawned()
	if err == nil {
		err = cmd.Wait()
		reaper.Unprotect(cmd.Process.Pid)
	}
	out := stdout.Bytes()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, ErrUnavailable
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(string(out))
		}
		return nil, fmt.Errorf("gpu: %s %s: %v: %s", path, strings.Join(Query, " "), err, msg)
	}
	return Parse(out)
}
