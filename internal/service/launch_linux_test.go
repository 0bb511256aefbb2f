package service

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/restart"
	"github.com/corral-sh/corral/internal/testproc"
)

// showargsService runs the showargs fixture, which prints its arguments
// and the variables A, B and HF_TOKEN, through argv or (shell) a sh line.
func showargsService(t *testing.T, shell bool) *config.Service {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := &config.Service{
		Name: "app", Argv: []string{exe, "showargs"}, Lifetime: config.LifetimeLeader, StdinNull: true,
		Env:      []string{testproc.Env + "=showargs", "GORACE=atexit_sleep_ms=0", testproc.ShowEnv + "=A,B,HF_TOKEN", "A=from-config", "B=from-config"},
		Profiles: map[string][]string{"p": {"--from-profile"}},
		Ready:    config.Probe{Log: regexp.MustCompile("^" + testproc.ShowArgsPrefix), Timeout: 20 * time.Second, Interval: 10 * time.Millisecond},
		Restart:  restart.Policy{Mode: restart.Always, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Burst: 50, Window: time.Minute},
		Stop:     config.Stop{Signal: syscall.SIGTERM, Grace: 2 * time.Second},
	}
	if shell {
		s.Argv, s.Shell = []string{"/bin/sh", "-c", "'" + exe + "' showargs"}, true
	}
	return s
}

// shown is what the instance printed: its line after output line since.
func shown(t *testing.T, h *harness, since uint64) testproc.ShowArgs {
	t.Helper()
	var line string
	eventually(t, 10*time.Second, "the showargs line", func() bool {
		for _, l := range h.svc.Logs().Tail(0) {
			if strings.HasPrefix(l.Text, testproc.ShowArgsPrefix) && l.Seq > since {
				line = l.Text
			}
		}
		return line != ""
	})
	var out testproc.ShowArgs
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, testproc.ShowArgsPrefix)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func lastLine(h *harness) uint64 {
	if tail := h.svc.Logs().Tail(1); len(tail) > 0 {
		return tail[0].Seq
	}
	return 0
}

func ensureWith(t *testing.T, h *harness, o StartOptions) (Status, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return h.svc.EnsureWith(ctx, o)
}

// An app's launch options reach the program: arguments after the command
// and the profile's, environment over the service's; the status shows the
// arguments and only the names of the variables. Another ensure with other
// options is refused and touches nothing; a crash's restart by the policy
// runs the same options again; asked to, other options replace the
// instance.
func TestLaunchOptionsReachTheProgram(t *testing.T) {
	for _, shell := range []bool{false, true} {
		name := map[bool]string{false: "argv", true: "shell"}[shell]
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, showargsService(t, shell))
			args := []string{"--port", "7861", "a b", `it's "quoted" $HOME; $(false)`, ""}
			env := map[string]string{"A": "from-app", "HF_TOKEN": "hf_secret"}
			st, err := ensureWith(t, h, StartOptions{Profile: "p", Args: args, Env: env})
			if err != nil {
				t.Fatal(err)
			}
			got := shown(t, h, 0)
			if want := append([]string{"--from-profile"}, args...); !slices.Equal(got.Args, want) {
				t.Fatalf("the program got %q, want %q", got.Args, want)
			}
			if got.Env["A"] != "from-app" || got.Env["B"] != "from-config" || got.Env["HF_TOKEN"] != "hf_secret" {
				t.Fatalf("the program's env %v", got.Env)
			}
			if !slices.Equal(st.Args, args) || !slices.Equal(st.EnvKeys, []string{"A", "HF_TOKEN"}) {
				t.Fatalf("status args %q env_keys %q", st.Args, st.EnvKeys)
			}
			if b, _ := json.Marshal(st); strings.Contains(string(b), "hf_secret") {
				t.Fatalf("the status shows an environment value: %s", b)
			}

			// Other options are refused; the instance runs on.
			_, err = ensureWith(t, h, StartOptions{Args: []string{"--port", "9999"}})
			if CodeOf(err) != CodeProfileMismatch || !strings.Contains(err.Error(), `not ["--port" "9999"]`) {
				t.Fatalf("ensure with other arguments: %v", err)
			}
			if now := h.svc.Status(); now.Instance != st.Instance || now.State != Ready {
				t.Fatalf("the refusal touched the instance: %+v", now)
			}
			// Leaving them out accepts what runs.
			if again, err := ensureWith(t, h, StartOptions{}); err != nil || again.Instance != st.Instance {
				t.Fatalf("a plain ensure: %v, instance %s", err, again.Instance)
			}

			// A crash: the policy restarts it with the same options.
			since := lastLine(h)
			old := st.Instance
			syscall.Kill(st.PID, syscall.SIGKILL)
			eventually(t, 30*time.Second, "the restart after the crash", func() bool {
				st = h.svc.Status()
				return st.State == Ready && st.Instance != old
			})
			if got := shown(t, h, since); !slices.Equal(got.Args[1:], args) || got.Env["HF_TOKEN"] != "hf_secret" {
				t.Fatalf("after the crash the program got %q %v", got.Args, got.Env)
			}
			if left := testproc.Carriers(old); len(left) > 0 {
				t.Fatalf("the crashed instance left %v", left)
			}

			// Asked to, other options replace it (the environment it does
			// not name is kept).
			since = lastLine(h)
			old = st.Instance
			st, err = ensureWith(t, h, StartOptions{Args: []string{"--port", "9999"}, RestartIfDifferent: true})
			if err != nil || st.Instance == old {
				t.Fatalf("restart if different: %v (instance %s)", err, st.Instance)
			}
			if got := shown(t, h, since); !slices.Equal(got.Args, []string{"--from-profile", "--port", "9999"}) || got.Env["A"] != "from-app" {
				t.Fatalf("after the switch the program got %q %v", got.Args, got.Env)
			}
			if left := testproc.Carriers(old); len(left) > 0 {
				t.Fatalf("the replaced instance left %v", left)
			}
		})
	}
}
