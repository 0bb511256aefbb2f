package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/config"
)

// maxDaemonOutput bounds how much of a failed daemon's output up prints.
const maxDaemonOutput = 4000

// daemonExited explains a daemon that exited before answering with what
// it wrote to its log in this run: the file's bytes after since (earlier
// runs' lines would mislead).
func daemonExited(waitErr error, logPath string, since int64) error {
	out := logSince(logPath, since)
	if strings.TrimSpace(out) == "" {
		return fmt.Errorf("the daemon exited (%v) before answering, and wrote nothing to %s", waitErr, logPath)
	}
	return fmt.Errorf("the daemon exited (%v) before answering; it wrote (%s):\n%s", waitErr, logPath, strings.TrimRight(out, "\n"))
}

// logSince returns what path holds past offset since (its last
// maxDaemonOutput bytes, marked as cut).
func logSince(path string, since int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() < since {
		since = 0 // rotated as the daemon started: all of it is this run's
	}
	if _, err := f.Seek(since, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	if len(b) > maxDaemonOutput {
		b = b[len(b)-maxDaemonOutput:]
		if i := strings.IndexByte(string(b), '\n'); i >= 0 {
			b = b[i+1:]
		}
		return "[...]\n" + string(b)
	}
	return string(b)
}

// checkRunning compares the daemon that already runs with what up was
// asked for: another configuration file, or a tether to another process,
// is refused (up would ensure services the user did not mean, or leave a
// daemon that outlives the app); a file changed since the daemon read it
// is said on stderr, with the command that applies it. up does not reload
// by itself: a reload restarts every service whose settings changed, and
// up is run to make sure things are up, not to restart them.
func (g *globals) checkRunning(cmd *cobra.Command, info client.Daemon, cfg *config.File, exitWith int) error {
	abs, _ := filepath.Abs(g.config)
	if info.Config != "" && info.Config != abs && !sameFile(info.Config, abs) {
		return fmt.Errorf("the daemon of %s (pid %d) runs %s, not %s; nothing was started: stop it first (corral -c %s shutdown), or give %s a state directory of its own (--state-dir)",
			g.state(), info.PID, info.Config, abs, shellWord(info.Config), g.config)
	}
	if exitWith != 0 && info.ExitWith != exitWith {
		tied := "to no process (it was started without --exit-with)"
		if info.ExitWith != 0 {
			tied = fmt.Sprintf("to process %d", info.ExitWith)
		}
		return fmt.Errorf("the daemon (pid %d) already runs, tied %s: it would not shut down when process %d exits, so nothing was started: stop it first (%s), or leave out --exit-with",
			info.PID, tied, exitWith, commandFor(cmd, "shutdown"))
	}
	if info.ConfigSHA256 != "" && info.ConfigSHA256 != cfg.Digest {
		fmt.Fprintf(cmd.ErrOrStderr(), "corral: %s changed since the daemon (pid %d) read it at %s; it still runs what it read then (up does not reload by itself, since a reload restarts the services whose settings changed): apply the change with: %s\n",
			g.config, info.PID, readTime(info.ConfigRead), commandFor(cmd, "reload"))
	}
	return nil
}

// sameFile reports whether two paths name one file (through symlinks:
// macOS's /tmp is /private/tmp).
func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

// readTime writes when the daemon read its file: the time of day, with
// the date when it was not today.
func readTime(t time.Time) string {
	t = t.Local()
	if y, m, d := t.Date(); y == time.Now().Year() && m == time.Now().Month() && d == time.Now().Day() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04:05")
}
