package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/journal"
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
