package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/logs"
)

// rawLogs asks the API for a service's lines (query: n=, after=, epoch=)
// and returns them with the answer's Corral-Epoch.
func (e *env) rawLogs(name, query string) ([]client.LogLine, string) {
	e.t.Helper()
	sock := ipc.Path(filepath.Join(e.dir, ".corral"))
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://corral/v1/services/" + name + "/logs?" + query)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []client.LogLine
	dec := json.NewDecoder(resp.Body)
	for {
		var l client.LogLine
		if err := dec.Decode(&l); err == io.EOF {
			break
		} else if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, l)
	}
	return out, resp.Header.Get("Corral-Epoch")
}

// eventually polls cond until it holds, failing after within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// follower runs corral with args (a logs -f) and hands its stdout's lines
// over a channel; wait ends it and returns its exit code and stderr.
type follower struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr bytes.Buffer
}

func (e *env) follow(args ...string) *follower {
	e.t.Helper()
	f := &follower{cmd: e.command(args...), lines: make(chan string, 1000)}
	f.cmd.Stderr = &f.stderr
	out, err := f.cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := f.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { f.cmd.Process.Kill(); f.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
		close(f.lines)
	}()
	return f
}

// next returns the follower's next line ("" once it ended).
func (f *follower) next(t *testing.T, within time.Duration) (string, bool) {
	t.Helper()
	select {
	case l, ok := <-f.lines:
		return l, ok
	case <-time.After(within):
		return "", true
	}
}

// Every service at once, merged by time with a name column; stderr marked;
// times with -t; --since; JSON with the service; -f -n 0 only new lines.
func TestE2ELogsOfAllServices(t *testing.T) {
	e := newEnv(t, `
[services.alpha]
shell = "echo a-1; echo a-err >&2; echo a-ready; exec sleep 300"
ready = { log = "^a-ready$", timeout = "20s" }
stop = { grace = "2s" }

[services.beta]
shell = "echo b-1 $CORRAL_INSTANCE; exec sleep 300"
after = ["alpha"]
ready = { log = "^b-1 ", timeout = "20s" }
stop = { grace = "2s" }
`)
	e.must("up")
	out := e.must("logs")
	for _, want := range []string{"alpha | a-1\n", "alpha ! a-err\n", "alpha | a-ready\n", "beta  | b-1 "} {
		if !strings.Contains(out, want) {
			t.Fatalf("logs lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "alpha | a-ready") > strings.Index(out, "beta  | b-1") {
		t.Fatalf("not ordered by time (beta started after alpha was ready):\n%s", out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Fatalf("colours on a pipe:\n%q", out)
	}
	// One service alone: its text, as before (stdout and stderr are two
	// pipes: their order is the order corral read them); -t adds times and
	// marks.
	got := strings.Split(strings.TrimSpace(e.must("logs", "alpha")), "\n")
	slices.Sort(got)
	if strings.Join(got, ",") != "a-1,a-err,a-ready" {
		t.Fatalf("logs alpha: %q", got)
	}
	if got := e.must("logs", "alpha", "-n", "1"); strings.Count(got, "\n") != 1 {
		t.Fatalf("logs alpha -n 1: %q", got)
	}
	stamped := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ! a-err$`)
	if got := strings.Split(strings.TrimSpace(e.must("logs", "alpha", "-t")), "\n"); !slices.ContainsFunc(got, stamped.MatchString) {
		t.Fatalf("logs -t: %q", got)
	}
	if got := e.must("logs", "--since", "1h"); got != out {
		t.Fatalf("--since 1h differs:\n%s", got)
	}
	if got := e.must("logs", "--since", time.Now().Add(time.Hour).Format(time.RFC3339)); got != "" {
		t.Fatalf("--since an hour ahead: %q", got)
	}
	var l struct {
		Service string `json:"service"`
		client.LogLine
	}
	for _, line := range strings.Split(strings.TrimSpace(e.must("logs", "--json", "alpha")), "\n") {
		if err := json.Unmarshal([]byte(line), &l); err != nil || l.Service != "alpha" || l.Time.IsZero() {
			t.Fatalf("--json line %q: %v", line, err)
		}
		if (l.Text == "a-err") != (l.Stream == "stderr") {
			t.Fatalf("stream of %+v", l)
		}
	}
	// -f -n 0: only what comes; the new instance's line, not the old ones.
	before := e.inspect("beta").Instance
	f := e.follow("logs", "-f", "-n", "0")
	var first string
	eventually(t, 20*time.Second, "a new line reaches logs -f -n 0", func() bool {
		e.must("restart", "beta")
		first, _ = f.next(t, 2*time.Second)
		return first != ""
	})
	if !strings.HasPrefix(first, "beta  | b-1 ") || strings.HasSuffix(first, before) {
		t.Fatalf("logs -f -n 0 began with %q (the instance before it was %s)", first, before)
	}
}

// What logs serves survives a daemon restart: the new daemon's sink starts
// with the file's tail, numbered on in the same epoch after a clean
// shutdown (a resume gets exactly what it had not seen), in a new epoch
// after a crash (a resume starts over, never skips). The file has every
// line's time and stream.
func TestE2ELogsSurviveADaemonRestart(t *testing.T) {
	e := newEnv(t, `
[services.talker]
shell = "i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo line $i; done; echo oops >&2; echo done-talking; exec sleep 300"
ready = { log = "^done-talking$", timeout = "20s" }
stop = { grace = "2s" }
`)
	e.must("up")
	first, epoch := e.rawLogs("talker", "n=0")
	if len(first) != 32 || first[31].Seq != 32 || epoch == "" {
		t.Fatalf("first daemon: %d lines, epoch %q", len(first), epoch)
	}
	e.must("shutdown")
	file, err := os.ReadFile(filepath.Join(e.dir, ".corral", "logs", "talker.log"))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSpace(string(file)), "\n") {
		l := logs.ParseLine([]byte(line))
		if l.Time.IsZero() || l.Text != first[i].Text || l.Stream != first[i].Stream {
			t.Fatalf("file line %d %q reads back as %+v, was %+v", i, line, l, first[i])
		}
	}
	// Read back without a daemon: times and streams from the file.
	off := e.command("logs", "talker", "-n", "0", "--json")
	var offOut bytes.Buffer
	off.Stdout = &offOut
	if err := off.Run(); err != nil {
		t.Fatal(err)
	}
	offLines := strings.Split(strings.TrimSpace(offOut.String()), "\n")
	if len(offLines) != 32 {
		t.Fatalf("logs without a daemon: %d lines", len(offLines))
	}
	for i, line := range offLines {
		var l client.LogLine
		json.Unmarshal([]byte(line), &l)
		if l.Text != first[i].Text || l.Stream != first[i].Stream || !l.Time.Equal(first[i].Time.Truncate(time.Millisecond)) {
			t.Fatalf("line %d without a daemon: %+v, the daemon had %+v", i, l, first[i])
		}
	}

	e.must("up")
	eventually(t, 20*time.Second, "the new instance's lines", func() bool {
		again, epoch2 := e.rawLogs("talker", "n=0")
		if epoch2 != epoch {
			t.Fatalf("a clean shutdown did not carry the epoch over: %s, then %s", epoch, epoch2)
		}
		return len(again) == 64
	})
	again, _ := e.rawLogs("talker", "n=0")
	for i := range 32 {
		if again[i].Seq != first[i].Seq || again[i].Text != first[i].Text || !again[i].Time.Equal(first[i].Time.Truncate(time.Millisecond)) {
			t.Fatalf("line %d after the restart: %+v, before: %+v", i, again[i], first[i])
		}
	}
	resumed, _ := e.rawLogs("talker", "after=32&epoch="+epoch)
	if len(resumed) != 32 || resumed[0].Seq != 33 {
		t.Fatalf("a resume after 32 got %d lines from %+v", len(resumed), resumed[:min(1, len(resumed))])
	}
	e.must("shutdown")

	// A crash: the numbering is not known to continue.
	d, _ := e.foreground()
	var crashed string
	eventually(t, 20*time.Second, "the instance after the crash", func() bool {
		ls, ep := e.rawLogs("talker", "n=0")
		crashed = ep
		return len(ls) == 96
	})
	d.Process.Signal(syscall.SIGKILL)
	d.Wait()
	e.must("up")
	var after []client.LogLine
	var epoch3 string
	eventually(t, 20*time.Second, "lines after the crash", func() bool {
		after, epoch3 = e.rawLogs("talker", "n=0")
		return len(after) == 128
	})
	if epoch3 == crashed || after[0].Seq != 1 {
		t.Fatalf("after a crash: epoch %s (was %s), first seq %d", epoch3, crashed, after[0].Seq)
	}
	resumed, _ = e.rawLogs("talker", fmt.Sprintf("after=%d&epoch=%s", 96, crashed))
	if len(resumed) != 128 {
		t.Fatalf("a resume of the crashed epoch skipped lines: %d of 128", len(resumed))
	}
}

// A running logs -f neither holds the shutdown up nor fails: it ends with
// exit 0 and says why on stderr.
func TestE2EFollowerDuringShutdown(t *testing.T) {
	e := newEnv(t, `
[services.quiet]
shell = "echo hello $CORRAL_INSTANCE; exec sleep 300"
ready = { log = "^hello", timeout = "20s" }
stop = { grace = "2s" }
`)
	e.must("up")
	for _, args := range [][]string{{"logs", "quiet", "-f", "-n", "0"}, {"logs", "-f", "-n", "0"}} {
		f := e.follow(args...)
		eventually(t, 20*time.Second, "logs -f is following", func() bool {
			e.must("restart", "quiet")
			l, _ := f.next(t, 2*time.Second)
			return l != ""
		})
		began := time.Now()
		e.must("shutdown")
		took := time.Since(began)
		done := make(chan error, 1)
		go func() { done <- f.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%v ended with %v: %s", args, err, f.stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%v still runs after the shutdown", args)
		}
		if !strings.Contains(f.stderr.String(), "the daemon shut down") {
			t.Fatalf("%v said %q", args, f.stderr.String())
		}
		t.Logf("%v: shutdown took %v with it following", args, took.Round(time.Millisecond))
		e.must("up")
	}
}

// Rotation as logs = { ... } says, compressed copies read back, and
// daemon.log rotated by [corral] logs, its stdout and stderr following.
func TestE2ELogRotation(t *testing.T) {
	e := newEnv(t, `
[corral]
logs = { max_size = "100KB", keep = 2 }

[services.chatty]
command = ["{exe}", "flood", "600000", "100", "0"]
env = { CORRAL_TESTPROC = "flood", GORACE = "atexit_sleep_ms=0" }
restart = { policy = "never" }
logs = { keep = 3, compress = true, lines = 100 }

[services.looper]
shell = "exit 0"
autostart = false
restart = { policy = "always", backoff = "0s", burst = 0 }
`)
	e.must("up")
	dir := filepath.Join(e.dir, ".corral", "logs")
	eventually(t, 30*time.Second, "the flood written and rotated", func() bool {
		ls, _ := e.rawLogs("chatty", "n=1")
		return len(ls) == 1 && ls[0].Text == "flood: done" && len(logs.Files(dir, "chatty")) == 4
	})
	files := logs.Files(dir, "chatty")
	for _, f := range files[1:] {
		if !strings.HasSuffix(f, ".log.gz") {
			eventually(t, 10*time.Second, "copies compressed", func() bool {
				return strings.HasSuffix(logs.Files(dir, "chatty")[len(files)-1], ".gz")
			})
		}
	}
	if ls, _ := e.rawLogs("chatty", "n=0"); len(ls) != 100 {
		t.Fatalf("kept %d lines, logs.lines = 100", len(ls))
	}
	all, err := logs.ReadTail(dir, "chatty", 0, 0)
	if err != nil || len(all) < 2000 || all[len(all)-1].Text != "flood: done" {
		t.Fatalf("on disk %d lines (%v)", len(all), err)
	}

	// daemon.log: a service restarting without pause fills it.
	e.corral("start", "looper")
	daemonLog := filepath.Join(e.dir, ".corral", "daemon.log")
	eventually(t, 60*time.Second, "daemon.log rotated", func() bool {
		return len(logs.Files(filepath.Dir(daemonLog), "daemon")) == 3
	})
	e.must("stop", "looper")
	for _, f := range logs.Files(filepath.Dir(daemonLog), "daemon") {
		if st, err := os.Stat(filepath.Join(filepath.Dir(daemonLog), f)); err != nil || st.Size() > 200_000 {
			t.Fatalf("%s: %v, %d bytes", f, err, st.Size())
		}
	}
	info, err := e.client().Daemon(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range []string{"1", "2"} {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", info.PID, fd)); target != daemonLog {
			t.Fatalf("the daemon's fd %s is %s, not the current %s", fd, target, daemonLog)
		}
	}
}
