package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/statedir"
)

// When no daemon answers, corral events and corral logs read what the
// daemons of this state directory left on disk: the journal, and each
// service's log file (with its rotated copies). stderr says so.

// noDaemonWhy says, for the note on stderr, why the files are read.
func noDaemonWhy(stateDir string) string {
	if pid, held := ipc.LockHolder(stateDir); held {
		if pid > 0 {
			return fmt.Sprintf("the daemon (pid %d) does not answer", pid)
		}
		return "the daemon does not answer"
	}
	return "the daemon is not running"
}

// followNote is added to the note when -f was given.
func followNote(follow bool, up string) string {
	if !follow {
		return ""
	}
	return fmt.Sprintf("; not following: nothing is written there until a daemon runs (start one with: %s)", up)
}

// offlineEvents prints the last n events (0: all) of the journal on disk.
// It returns noDaemon itself when there is no journal to read.
func (g *globals) offlineEvents(out, errw io.Writer, noDaemon error, n int, follow bool, up string) error {
	path := filepath.Join(g.state(), journal.FileName)
	if _, err := os.Stat(path); err != nil {
		return noDaemon
	}
	events, torn, err := journal.ReadFile(path)
	if err != nil {
		return err
	}
	if n > 0 && len(events) > n {
		events = events[len(events)-n:]
	}
	damaged := ""
	if torn > 0 {
		damaged = fmt.Sprintf(" (%d damaged lines skipped)", torn)
	}
	fmt.Fprintf(errw, "corral: %s; these events are from the journal on disk (%s)%s%s\n", noDaemonWhy(g.state()), path, damaged, followNote(follow, up))
	for _, e := range events {
		ce := client.Event{Seq: e.Seq, Time: e.Time, Kind: string(e.Kind), Service: e.Service, Instance: e.Instance, PID: e.PID,
			Message: e.Message, Fields: e.Fields, Cgroup: e.Cgroup, Start: e.Start, Boot: e.Boot, Cmdline: e.Cmdline}
		if err := printEvent(out, ce, g.json); err != nil {
			return err
		}
	}
	return nil
}

// validServiceName reports whether name could be a service's (and so a
// log file's) name: nothing that reaches outside the logs directory.
func validServiceName(name string) bool {
	return name != "" && !strings.ContainsAny(name, `/\`+"\x00") && name[0] != '.'
}

// offlineLogs prints the last n lines (0: all kept on disk) of a service's
// log files. An unknown service is a usage error; a service with no file
// (or no state directory) returns noDaemon itself.
func (g *globals) offlineLogs(out, errw io.Writer, noDaemon error, name string, n int, follow bool, up string) error {
	sk, skErr := config.ReadSketch(g.config)
	dir := filepath.Join(g.state(), "logs")
	known := skErr == nil && slices.Contains(sk.Names(), name)
	files := logFiles(dir, name)
	if !validServiceName(name) || len(files) == 0 && skErr == nil && !known {
		if skErr != nil {
			return usageErr("unknown service %q", name)
		}
		return usageErr("unknown service %q%s (configured: %s)", name, config.DidYouMean(name, sk.Names()), strings.Join(sk.Names(), ", "))
	}
	if len(files) == 0 {
		return noDaemon
	}
	// From the live file back through the rotated copies, until n lines.
	var lines []string
	for i := range files {
		f, err := statedir.OpenFile(dir, files[i], os.O_RDONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		var these []string
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			these = append(these, sc.Text())
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(dir, files[i]), err)
		}
		lines = append(these, lines...)
		if n > 0 && len(lines) >= n {
			break
		}
	}
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	fmt.Fprintf(errw, "corral: %s; these lines of %s are from its log file on disk (%s)%s\n",
		noDaemonWhy(g.state()), name, filepath.Join(dir, name+".log"), followNote(follow, up))
	for i, l := range lines {
		if g.json {
			// No time or stream: the file keeps only the text.
			if err := writeJSONLine(out, client.LogLine{Seq: uint64(i + 1), Text: l}); err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintln(out, l); err != nil {
			return err
		}
	}
	return nil
}

// logFiles returns a service's log file and its rotated copies in dir,
// newest first: NAME.log, then NAME-<time>.log as lumberjack names them.
func logFiles(dir, name string) []string {
	if !validServiceName(name) {
		return nil
	}
	var out []string
	if st, err := os.Lstat(filepath.Join(dir, name+".log")); err == nil && st.Mode().IsRegular() {
		out = append(out, name+".log")
	}
	entries, _ := os.ReadDir(dir)
	rotated := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}\.log$`)
	var old []string
	for _, e := range entries {
		if e.Type().IsRegular() && rotated.MatchString(e.Name()) {
			old = append(old, e.Name())
		}
	}
	slices.Sort(old)
	slices.Reverse(old)
	return append(out, old...)
}

// writeJSONLine writes v as one line of JSON (a stream's element).
func writeJSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// printEvent prints one event as corral events does.
func printEvent(out io.Writer, e client.Event, asJSON bool) error {
	if asJSON {
		return writeJSONLine(out, e)
	}
	svc := e.Service
	if svc == "" {
		svc = "-"
	}
	_, err := fmt.Fprintf(out, "%s %-9s %-10s %s\n", e.Time.Format("15:04:05.000"), e.Kind, svc, e.Message)
	return err
}
