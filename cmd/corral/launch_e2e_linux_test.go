package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corral-sh/corral/client"
)

// corral ensure|start|restart SERVICE --env NAME=value -- ARGS: the
// instance's own arguments and environment reach the program; other ones
// are refused while it runs; a restart keeps them, or drops the arguments
// with a bare --; misuse exits 2 saying why.
func TestE2ELaunchOptions(t *testing.T) {
	e := newEnv(t, `
[services.sd]
command = ["/bin/sh", "-c", "echo \"args:$* token:$TOKEN mode:$MODE\"; exec sleep 1000", "sh", "--api"]
env = { MODE = "config" }
autostart = false
ready = { log = "^args:", timeout = "20s" }
`)
	e.must("up")
	e.must("ensure", "sd", "--env", "TOKEN=s3cret", "--", "--port", "7861", "a b")
	if logs := e.must("logs", "sd", "-n", "1"); strings.TrimSpace(logs) != "args:--api --port 7861 a b token:s3cret mode:config" {
		t.Fatalf("the instance got %q", logs)
	}
	s := e.inspect("sd")
	if strings.Join(s.Args, "|") != "--port|7861|a b" || strings.Join(s.EnvKeys, ",") != "TOKEN" {
		t.Fatalf("status: args %q env_keys %q", s.Args, s.EnvKeys)
	}
	if out := e.must("status", "sd", "--json"); strings.Contains(out, "s3cret") {
		t.Fatalf("status shows an environment value:\n%s", out)
	}
	out, code := e.corral("ensure", "sd", "--", "--port", "1")
	if code != 1 || !strings.Contains(out, `arguments ["--port" "7861" "a b"], not ["--port" "1"]`) || !strings.Contains(out, "restart_if_different") {
		t.Fatalf("ensure with other arguments exited %d:\n%s", code, out)
	}
	if now := e.inspect("sd"); now.Instance != s.Instance {
		t.Fatalf("the refusal touched the instance: %+v", now)
	}
	e.must("restart", "sd", "--env", "MODE=app", "--wait")
	if logs := e.must("logs", "sd", "-n", "1"); strings.TrimSpace(logs) != "args:--api --port 7861 a b token: mode:app" {
		t.Fatalf("a restart with --env only got %q", logs)
	}
	e.must("restart", "sd", "--wait", "--")
	if logs := e.must("logs", "sd", "-n", "1"); strings.TrimSpace(logs) != "args:--api token: mode:app" {
		t.Fatalf("a restart with a bare -- got %q", logs)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"start", "sd", "other", "--", "x"}, "start: arguments after -- and --env are one instance's: name one SERVICE, not 2"},
		{[]string{"ensure", "sd", "other"}, "ensure takes one SERVICE (before --), got 2: sd other"},
		{[]string{"start", "--", "x"}, "start needs a SERVICE (before --)"},
		{[]string{"ensure", "sd", "--env", "TOKEN"}, `--env "TOKEN": write NAME=value`},
		{[]string{"ensure", "sd", "--env", "CORRAL_SERVICE=x"}, "CORRAL_SERVICE is set by corral for every process of the service"},
	} {
		if out, code := e.corral(tc.args...); code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("corral %s exited %d:\n%s\nwant 2 and %q", strings.Join(tc.args, " "), code, out, tc.want)
		}
	}
}

// A service defined through the API outlives its daemon: the next one
// (corral up) loads it from the state directory and starts it.
func TestE2EDefinedServiceOutlivesTheDaemon(t *testing.T) {
	e := newEnv(t, "[services.base]\ncommand = [\"/bin/sh\", \"-c\", \"exec sleep 1000\"]\nautostart = false\n")
	e.must("up")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := e.client()
	s, err := cl.Define(ctx, "app", map[string]any{
		"shell": "echo defined; exec sleep 1000",
		"ready": map[string]any{"log": "^defined"},
	})
	if err != nil || s.State == "stopped" {
		t.Fatalf("define (autostart by default): %+v, %v", s, err)
	}
	cl.CloseIdleConnections()
	e.must("shutdown")
	if _, err := os.Stat(filepath.Join(e.dir, ".corral", "services.json")); err != nil {
		t.Fatal(err)
	}
	e.must("up")
	// The daemon started it (autostart); the ensure joins that start.
	e.must("ensure", "app")
	s = e.inspect("app")
	if s.State != "ready" || s.Starts != 1 {
		t.Fatalf("app after the daemon's restart: %+v", s)
	}
	out := e.must("stop", "app")
	if !strings.Contains(out, "0 left") {
		t.Fatalf("stop: %s", out)
	}
	if _, err := e.client().Remove(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client().Inspect(ctx, "app"); client.CodeOf(err) != client.CodeUnknownService {
		t.Fatalf("after its removal: %v", err)
	}
}
