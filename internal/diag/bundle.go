// Package diag owns the evidence corral keeps: diagnostic bundles (one
// archive with the member trees, statuses, last log lines and events, the
// configuration, port owners and the doctor report, every file of it
// redacted by internal/redact), rate-limited per reason and guarded by a
// lock that a dead writer cannot hold forever; and the doctor report of
// which containment and guarantees hold here.
package diag

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/corral-sh/corral/internal/redact"
)

// Bundler writes bundles into Dir.
type Bundler struct {
	Dir      string
	Cooldown time.Duration
	Now      func() time.Time
}

// ErrBusy means another writer holds the bundle lock.
var ErrBusy = errors.New("diag: another bundle is being written")

// Write stores files as Dir/<time>-<reason>.tar.gz. Every file is redacted
// first, by its name (redact.File: .json, .jsonl, .toml structured, the rest
// as text), so no caller can forget to: a bundle is made to be handed to
// someone else. files itself is not changed. Unless force, a reason gets at
// most one bundle per Cooldown (a breach storm yields one bundle, not
// hundreds); skipped reports that. The lock is broken when the pid in it is
// dead.
func (b *Bundler) Write(reason string, force bool, files map[string][]byte) (path string, skipped bool, err error) {
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	if err := os.MkdirAll(b.Dir, 0o700); err != nil {
		return "", false, fmt.Errorf("diag: %w", err)
	}
	release, err := b.lock()
	if err != nil {
		return "", false, err
	}
	defer release()
	safe := regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(reason, "_")
	stamp := filepath.Join(b.Dir, ".last-"+safe)
	if !force {
		if last, err := os.ReadFile(stamp); err == nil {
			if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(last))); err == nil && now().Sub(t) < b.Cooldown {
				return "", true, nil
			}
		}
	}
	redacted := make(map[string][]byte, len(files))
	for n, body := range files {
		redacted[n] = redact.File(n, body)
	}
	path = filepath.Join(b.Dir, now().UTC().Format("20060102T150405.000Z")+"-"+safe+".tar.gz")
	if err := writeTarGz(path, redacted, now()); err != nil {
		return "", false, err
	}
	os.WriteFile(stamp, []byte(now().Format(time.RFC3339Nano)), 0o600)
	return path, false, nil
}

func (b *Bundler) lock() (func(), error) {
	lock := filepath.Join(b.Dir, ".lock")
	for i := 0; i < 2; i++ {
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintf(f, "%d\n", os.Getpid())
			f.Close()
			return func() { os.Remove(lock) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("diag: bundle lock: %w", err)
		}
		pidb, _ := os.ReadFile(lock)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(pidb)))
		if pid > 0 && alive(pid) {
			return nil, ErrBusy
		}
		os.Remove(lock) // stale: its writer died
	}
	return nil, ErrBusy
}

func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscall.Signal(0)) == nil
}

func writeTarGz(path string, files map[string][]byte, at time.Time) error {
	f, err := os.OpenFile(path+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("diag: %w", err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		body := files[n]
		if err = tw.WriteHeader(&tar.Header{Name: n, Mode: 0o600, Size: int64(len(body)), ModTime: at}); err != nil {
			break
		}
		if _, err = tw.Write(body); err != nil {
			break
		}
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path + ".tmp")
		return fmt.Errorf("diag: write bundle: %w", err)
	}
	return os.Rename(path+".tmp", path)
}

// Redact returns a redacted copy of a corral.toml: valid TOML headed by a
// comment that says so (redact.TOML), or, when text does not parse, the text
// with its secrets replaced. Write redacts every file anyway; this is for
// showing a configuration elsewhere.
func Redact(text string) string {
	return string(redact.File("corral.toml", []byte(text)))
}
