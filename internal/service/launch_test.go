package service

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/proctree"
)

// Launch options: arguments and environment a start gives one instance.

// spawnAsAsked answers the preflight and the spawn as the executor would:
// the new instance runs what the spawn effect says.
func (f *fakeExec) spawnAsAsked(id string) fxSpawn {
	f.t.Helper()
	f.result(event{kind: EvChecked})
	var sp *fxSpawn
	for _, fx := range f.fx {
		if s, ok := fx.(fxSpawn); ok {
			sp = &s
		}
	}
	if sp == nil {
		f.t.Fatal("no spawn")
	}
	f.fx = nil
	f.result(event{kind: EvSpawned, newInst: &instance{cfg: f.m.cfg, id: id, started: f.at, launch: sp.next.launch, argv: sp.argv}})
	return *sp
}

func withArgs(args ...string) func(*event) {
	return func(e *event) { e.setArgs, e.args = true, args }
}

func withVars(vars ...string) func(*event) {
	return func(e *event) { e.setVars, e.vars = true, vars }
}

func ensureReq(e *event) { e.ensure = true }

func TestLaunchOptionsReachTheSpawn(t *testing.T) {
	f := newFake(t, pureConfig())
	f.request(EvStart, waitRunning, func(e *event) { e.profile = "guarded" }, withArgs("--port", "7861"), withVars("A=1"))
	sp := f.spawnAsAsked("i1")
	if want := []string{"/bin/server", "--medvram", "--port", "7861"}; !slices.Equal(sp.argv, want) {
		t.Fatalf("argv %q, want %q", sp.argv, want)
	}
	if !slices.Equal(sp.next.vars, []string{"A=1"}) {
		t.Fatalf("vars %q", sp.next.vars)
	}
}

// An ensure or start that names other arguments or another environment
// than the running instance's is refused like another profile (never a
// second instance, never silently the old one), or restarts it when asked;
// what a request leaves out is accepted whatever runs.
func TestLaunchMismatch(t *testing.T) {
	f := newFake(t, pureConfig())
	f.request(EvStart, waitRunning, withArgs("--api"), withVars("HF_TOKEN=secret1", "PORT=1"))
	f.spawnAsAsked("i1")
	f.result(event{kind: EvReady})
	f.want(Ready)

	for _, tc := range []struct {
		name string
		mod  []func(*event)
		want string // "" accepted, else in the refusal
	}{
		{"nothing named", nil, ""},
		{"same args", []func(*event){withArgs("--api")}, ""},
		{"same env", []func(*event){withVars("HF_TOKEN=secret1", "PORT=1")}, ""},
		{"other args", []func(*event){withArgs("--api", "--xformers")}, `arguments ["--api"], not ["--api" "--xformers"]`},
		{"no args", []func(*event){withArgs()}, `arguments ["--api"], not [] (none)`},
		{"other env value", []func(*event){withVars("HF_TOKEN=secret2", "PORT=1")}, "another environment (HF_TOKEN has another value)"},
		{"env missing", []func(*event){withVars("PORT=1")}, "HF_TOKEN is set"},
		{"profile and env", []func(*event){func(e *event) { e.profile = "cpu" }, withVars("X=1")},
			`no profile, not "cpu", and another environment (X is not set, HF_TOKEN is set, PORT is set)`},
	} {
		for _, ensure := range []bool{false, true} {
			mods := append([]func(*event){func(e *event) { e.ensure = ensure }}, tc.mod...)
			err := got(t, f.request(EvStart, waitRunning, mods...))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%s (ensure %v): refused: %v", tc.name, ensure, err)
			case tc.want != "" && (CodeOf(err) != CodeProfileMismatch || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("%s (ensure %v): %v, want profile_mismatch with %q", tc.name, ensure, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("%s: the refusal shows an environment value: %v", tc.name, err)
			}
		}
	}
	f.want(Ready)
	if f.m.inst.id != "i1" {
		t.Fatal("a refused start touched the instance")
	}

	// Asked to, other arguments replace the instance; the environment it
	// did not name is kept.
	ch := f.request(EvStart, waitReady, ensureReq, withArgs("--api", "--xformers"), func(e *event) { e.switchProfile = true })
	f.want(Restarting)
	pending_(t, ch)
	f.result(event{kind: EvEmpty, report: &proctree.StopReport{}})
	sp := f.spawnAsAsked("i2")
	if !slices.Equal(sp.next.args, []string{"--api", "--xformers"}) || !slices.Equal(sp.next.vars, []string{"HF_TOKEN=secret1", "PORT=1"}) {
		t.Fatalf("after the switch: %+v", sp.next.launch)
	}
}

// Restarts keep the instance's launch: a restart that names nothing, the
// restart policy's after a crash, the program's own (restart_file).
func TestRestartsKeepTheLaunch(t *testing.T) {
	cfg := pureConfig()
	cfg.RestartFile = "/tmp/restart"
	f := newFake(t, cfg)
	f.request(EvStart, waitRunning, withArgs("--a"), withVars("A=1"))
	want := launch{args: []string{"--a"}, vars: []string{"A=1"}}
	same := func(l launch, what string) {
		t.Helper()
		if l.profile != want.profile || !slices.Equal(l.args, want.args) || !slices.Equal(l.vars, want.vars) {
			t.Fatalf("%s: launch %+v, want %+v", what, l, want)
		}
	}
	f.spawnAsAsked("i1")

	f.request(EvRestart, waitRunning)
	f.result(event{kind: EvEmpty, report: &proctree.StopReport{}})
	same(f.spawnAsAsked("i2").next.launch, "restart without options")

	crash(f, 1)
	f.want(Backoff)
	f.result(event{kind: EvTimer})
	same(f.spawnAsAsked("i3").next.launch, "the policy's restart")

	f.result(event{kind: EvExited, exit: &ExitInfo{At: f.at, Code: 0}, restartFile: true})
	f.result(event{kind: EvEmpty, report: &proctree.StopReport{}})
	sp := f.spawnAsAsked("i4")
	same(sp.next.launch, "the program's restart")
	if !slices.Equal(sp.next.env, []string{"SD_WEBUI_RESTARTING=1"}) {
		t.Fatalf("program restart env %q", sp.next.env)
	}

	// A restart that names arguments replaces them; the rest is kept.
	f.request(EvRestart, waitRunning, withArgs())
	f.result(event{kind: EvEmpty, report: &proctree.StopReport{}})
	want.args = nil
	same(f.spawnAsAsked("i5").next.launch, "restart with no arguments")
	// A start of a stopped service names its own, or none.
	f.request(EvStop, waitStopped)
	f.result(event{kind: EvEmpty, report: &proctree.StopReport{}})
	f.request(EvStart, waitRunning)
	want = launch{}
	same(f.spawnAsAsked("i6").next.launch, "start after a stop")
}

// Arguments the configuration cannot run, and a bad environment, are
// refused before the service sees them: nothing changes.
func TestBadLaunchChangesNothing(t *testing.T) {
	cfg := pureConfig()
	s := New(cfg, Deps{})
	defer s.Close()
	ctx := context.Background()
	for _, o := range []StartOptions{
		{Env: map[string]string{"CORRAL_INSTANCE": "x"}},
		{Env: map[string]string{"A=B": "x"}},
		{Args: []string{"a\x00b"}},
		{Profile: "nope", Args: []string{"x"}},
	} {
		st, err := s.StartWith(ctx, o)
		if CodeOf(err) != CodeBadRequest || st.State != Stopped || st.Starts != 0 {
			t.Errorf("%+v: %v (%s), want bad_request and nothing started", o, err, st.State)
		}
		if strings.Contains(err.Error(), "config: ") {
			t.Errorf("%+v: %v: the message has the package prefix inside", o, err)
		}
	}
	if _, err := s.RestartWith(ctx, StartOptions{Env: map[string]string{"": "x"}}); CodeOf(err) != CodeBadRequest {
		t.Errorf("restart with a bad env: %v", err)
	}
}

// The stop hook's flag counts in the start's own COMMANDLINE_ARGS.
func TestHookSeesTheLaunchEnv(t *testing.T) {
	cfg := &config.Service{Name: "w", Argv: []string{"webui.sh"}, Stop: config.Stop{Hook: &config.Hook{Method: "POST", URL: "http://x/", RequiresArg: "--api-server-stop"}}}
	if cfg.HookFor(cfg.Argv) != nil {
		t.Fatal("hook without the flag")
	}
	if cfg.WithEnv([]string{"COMMANDLINE_ARGS=--api --api-server-stop"}).HookFor(cfg.Argv) == nil {
		t.Fatal("the start's COMMANDLINE_ARGS was not seen")
	}
}
