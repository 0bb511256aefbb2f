package client

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/daemon"
	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/testproc"
)

// runDaemon runs a real daemon of cfg (written to the config file) in
// state, and returns its client and a stop that shuts it down verified.
func runDaemon(t *testing.T, cfgPath, state string) (*Client, func()) {
	t.Helper()
	listening := make(chan struct{})
	ran := make(chan error, 1)
	go func() {
		res, err := daemon.Run(context.Background(), daemon.Options{ConfigPath: cfgPath, StateDir: state,
			Version: "test", Listening: func() { close(listening) }})
		if err == nil && (len(res.Survivors) > 0 || len(res.Errors) > 0) {
			err = fmt.Errorf("shutdown not clean: %+v", res)
		}
		ran <- err
	}()
	select {
	case <-listening:
	case err := <-ran:
		t.Fatalf("daemon: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the daemon does not listen after a minute")
	}
	cl := New(ipc.Path(state))
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if res, err := cl.Shutdown(ctx); err != nil || len(res.Survivors) > 0 {
			t.Errorf("shutdown: %+v, %v", res, err)
		}
		select {
		case err := <-ran:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(time.Minute):
			t.Error("the daemon did not end after its shutdown")
		}
		cl.CloseIdleConnections()
	}
	t.Cleanup(stop)
	return cl, stop
}

// showargsDef is the definition, as an app would send it, of a service
// running the showargs fixture (this test binary).
func showargsDef(t *testing.T, extra map[string]any) map[string]any {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	def := map[string]any{
		"command":   []string{exe, "showargs"},
		"env":       map[string]string{testproc.Env: "showargs", "GORACE": "atexit_sleep_ms=0", testproc.ShowEnv: "A,TOKEN", "A": "defined"},
		"autostart": false,
		"ready":     map[string]any{"log": "^" + testproc.ShowArgsPrefix, "timeout": "30s"},
		"restart":   map[string]any{"policy": "on-failure", "backoff": "10ms"},
		"stop":      map[string]any{"grace": "2s"},
	}
	for k, v := range extra {
		def[k] = v
	}
	return def
}

// printed is the showargs line of the service's current instance.
func printed(t *testing.T, cl *Client, name, instance string) testproc.ShowArgs {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The instance's line: the spawn event's sequence is not the log's, so
	// the last line printed by any instance of it is taken once the
	// instance is ready (its ready probe is that line).
	var line string
	for ctx.Err() == nil && line == "" {
		s, err := cl.Inspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if s.Instance != instance || s.State != "ready" {
			t.Fatalf("%s: instance %s %s, want %s ready", name, s.Instance, s.State, instance)
		}
		cl.Logs(ctx, name, 0, false, func(l LogLine) error {
			if strings.HasPrefix(l.Text, testproc.ShowArgsPrefix) {
				line = l.Text
			}
			return nil
		})
	}
	var out testproc.ShowArgs
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, testproc.ShowArgsPrefix)), &out); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return out
}

func wantCode(t *testing.T, err error, code, msg string) {
	t.Helper()
	if CodeOf(err) != code || !strings.Contains(err.Error(), msg) {
		t.Fatalf("%v (code %q), want code %q and a message with %q", err, CodeOf(err), code, msg)
	}
}

// Services defined, changed and removed through the API, with real
// processes: validated as the file's (the key named, nothing changed),
// the file's own untouchable, a changed running one restarted with its
// launch options, a removal a verified stop, definitions kept across a
// reload and a daemon restart, and the file winning a name it comes to
// define.
func TestServicesDefinedThroughTheAPI(t *testing.T) {
	dir := shortTempDir(t)
	exe, _ := os.Executable()
	cfgPath := filepath.Join(dir, "corral.toml")
	fileCfg := fmt.Sprintf(`
[services.base]
command = ['%s', "sleep"]
env = { CORRAL_TESTPROC = "sleep", GORACE = "atexit_sleep_ms=0" }
autostart = false
`, exe)
	if err := os.WriteFile(cfgPath, []byte(fileCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "s")
	cl, stop := runDaemon(t, cfgPath, state)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Refused, with the key named, and nothing defined.
	_, err := cl.Define(ctx, "app", showargsDef(t, map[string]any{"restart": map[string]any{"backoff": "soon"}}))
	wantCode(t, err, CodeBadRequest, `services.app.restart.backoff: "soon" is not a duration`)
	_, err = cl.Define(ctx, "app", showargsDef(t, map[string]any{"after": []string{"nope"}}))
	wantCode(t, err, CodeBadRequest, `services.app.after: unknown service "nope"`)
	_, err = cl.Define(ctx, "app", json.RawMessage(`{"command": ["x"], "autostart": "no"}`))
	wantCode(t, err, CodeBadRequest, "services.app.autostart: expected true or false")
	if _, err := cl.Inspect(ctx, "app"); CodeOf(err) != CodeUnknownService {
		t.Fatalf("a refused definition defined something: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, daemon.DefinitionsName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused definition was stored: %v", err)
	}
	// The file's services are the file's.
	_, err = cl.Define(ctx, "base", showargsDef(t, nil))
	wantCode(t, err, CodeDefinedInFile, "is defined in "+cfgPath+", which the API does not change: edit it there and run corral reload")
	_, err = cl.Remove(ctx, "base")
	wantCode(t, err, CodeDefinedInFile, "remove it there")

	// Defined, then started with an app's launch options.
	s, err := cl.Define(ctx, "app", showargsDef(t, map[string]any{"after": []string{"base"}}))
	if err != nil || s.State != "stopped" {
		t.Fatalf("define: %+v, %v", s, err)
	}
	s, err = cl.EnsureWith(ctx, "app", StartOptions{Args: []string{"--port", "7861"}, Env: map[string]string{"TOKEN": "t0ken"}, Timeout: time.Minute})
	if err != nil || s.State != "ready" || !slices.Equal(s.Args, []string{"--port", "7861"}) || !slices.Equal(s.EnvKeys, []string{"TOKEN"}) {
		t.Fatalf("ensure: %+v, %v", s, err)
	}
	if base, _ := cl.Inspect(ctx, "base"); base.State != "ready" {
		t.Fatalf("base, which app starts after, is %s", base.State)
	}
	got := printed(t, cl, "app", s.Instance)
	if !slices.Equal(got.Args, []string{"--port", "7861"}) || got.Env["A"] != "defined" || got.Env["TOKEN"] != "t0ken" {
		t.Fatalf("the program got %+v", got)
	}
	_, err = cl.EnsureWith(ctx, "app", StartOptions{Args: []string{"--port", "1"}})
	wantCode(t, err, CodeProfileMismatch, `arguments ["--port" "7861"], not ["--port" "1"]`)

	// The same definition again changes nothing; a changed one restarts
	// what runs, with its launch options.
	if again, err := cl.Define(ctx, "app", showargsDef(t, map[string]any{"after": []string{"base"}})); err != nil || again.Instance != s.Instance {
		t.Fatalf("the same definition: %+v, %v (instance was %s)", again, err, s.Instance)
	}
	changed := showargsDef(t, map[string]any{"after": []string{"base"}})
	changed["env"].(map[string]string)["A"] = "changed"
	c, err := cl.Define(ctx, "app", changed)
	if err != nil || c.Instance == s.Instance || c.Instance == "" {
		t.Fatalf("a changed definition: %+v, %v", c, err)
	}
	if left := testproc.Carriers(s.Instance); len(left) > 0 {
		t.Fatalf("the instance before the change left %v", left)
	}
	c, _ = cl.EnsureWith(ctx, "app", StartOptions{Timeout: time.Minute})
	if got := printed(t, cl, "app", c.Instance); !slices.Equal(got.Args, []string{"--port", "7861"}) || got.Env["A"] != "changed" || got.Env["TOKEN"] != "t0ken" {
		t.Fatalf("after the change the program got %+v", got)
	}

	// A reload keeps it, running.
	if err := os.WriteFile(cfgPath, []byte(fileCfg+"\n[services.other]\ncommand = [\"x\"]\nautostart = false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := cl.Reload(ctx)
	if err != nil || !slices.Equal(res.Added, []string{"other"}) || !slices.Contains(res.Unchanged, "app") {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	if now, _ := cl.Inspect(ctx, "app"); now.Instance != c.Instance || now.State != "ready" {
		t.Fatalf("after the reload: %+v", now)
	}
	// Nor may another service need it when it goes.
	if _, err := cl.Define(ctx, "needs", map[string]any{"command": []string{"x"}, "autostart": false, "after": []string{"app"}}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.Remove(ctx, "app")
	wantCode(t, err, CodeBadRequest, "needs start after it")
	if _, err := cl.Remove(ctx, "needs"); err != nil {
		t.Fatal(err)
	}

	// Removed: a verified stop, then gone.
	r, err := cl.Remove(ctx, "app")
	if err != nil || r.State != "stopped" || r.LastStop == nil || len(r.LastStop.Survivors) != 0 {
		t.Fatalf("remove: %+v, %v", r, err)
	}
	if left := testproc.Carriers(c.Instance); len(left) > 0 {
		t.Fatalf("the removed service left %v", left)
	}
	if _, err := cl.Inspect(ctx, "app"); CodeOf(err) != CodeUnknownService {
		t.Fatalf("after its removal: %v", err)
	}
	_, err = cl.Remove(ctx, "app")
	wantCode(t, err, CodeUnknownService, `unknown service "app"`)

	// Stored across a daemon restart (and started there, autostart).
	if _, err := cl.Define(ctx, "app", showargsDef(t, map[string]any{"autostart": true})); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(state, daemon.DefinitionsName))
	if err != nil || !strings.Contains(string(b), `"app": {`) || strings.Contains(string(b), `"needs"`) {
		t.Fatalf("%s: %s, %v", daemon.DefinitionsName, b, err)
	}
	if st, _ := os.Stat(filepath.Join(state, daemon.DefinitionsName)); st.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v", daemon.DefinitionsName, st.Mode())
	}
	stop()
	cl, _ = runDaemon(t, cfgPath, state)
	s, err = cl.Ensure(ctx, "app", time.Minute)
	if err != nil || s.Starts != 1 {
		t.Fatalf("after the daemon's restart: %+v, %v", s, err)
	}

	// The file comes to define the name: its definition is used, and the
	// one made through the API is forgotten, saying so.
	if err := os.WriteFile(cfgPath, []byte(fileCfg+fmt.Sprintf("\n[services.app]\ncommand = ['%s', \"sleep\"]\nenv = { CORRAL_TESTPROC = \"sleep\" }\nautostart = false\n", exe)), 0o600); err != nil {
		t.Fatal(err)
	}
	if res, err := cl.Reload(ctx); err != nil || !slices.Equal(res.Changed, []string{"app"}) {
		t.Fatalf("reload taking app over: %+v, %v", res, err)
	}
	b, _ = os.ReadFile(filepath.Join(state, daemon.DefinitionsName))
	if strings.Contains(string(b), `"app"`) {
		t.Fatalf("%s still has app: %s", daemon.DefinitionsName, b)
	}
	var said []string
	cl.Events(ctx, 0, false, func(e Event) error { said = append(said, e.Message); return nil })
	if want := "service app is defined in " + cfgPath + " now: that definition is used, and the one made through the API was removed from services.json"; !strings.Contains(strings.Join(said, "\n"), want) {
		t.Fatalf("events:\n%s\nwant %q", strings.Join(said, "\n"), want)
	}
}

// A reload that would leave a service defined through the API without
// what it starts after is refused, and changes nothing.
func TestReloadKeepsWhatDefinedServicesNeed(t *testing.T) {
	dir := shortTempDir(t)
	cfgPath := filepath.Join(dir, "corral.toml")
	if err := os.WriteFile(cfgPath, []byte("[services.db]\ncommand = [\"x\"]\nautostart = false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cl, _ := runDaemon(t, cfgPath, filepath.Join(dir, "s"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cl.Define(ctx, "app", map[string]any{"command": []string{"x"}, "autostart": false, "after": []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte("[services.web]\ncommand = [\"x\"]\nautostart = false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := cl.Reload(ctx)
	wantCode(t, err, CodeBadConfig, `reload rejected, nothing changed: config: services.app.after: unknown service "db"`)
	if list, _ := cl.List(ctx, false); len(list) != 2 || list[0].Name != "app" || list[1].Name != "db" {
		t.Fatalf("after the refused reload: %+v", list)
	}
}

// A bad launch body is refused before anything is done.
func TestBadLaunchBodyChangesNothing(t *testing.T) {
	dir := shortTempDir(t)
	exe, _ := os.Executable()
	cfgPath := filepath.Join(dir, "corral.toml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("[services.a]\ncommand = ['%s', \"sleep\"]\nenv = { CORRAL_TESTPROC = \"sleep\" }\nautostart = false\n", exe)), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "s")
	cl, _ := runDaemon(t, cfgPath, state)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for body, want := range map[string]string{
		`{"argz": ["x"]}`:                   `unknown field "argz" in the body`,
		`{"args": "--x"}`:                   "args must be a list of strings",
		`{"args": [1]}`:                     "args must be a list of strings ([\"--port\", \"7861\"]), not a list with an element that is not a string",
		`{"env": {"PORT": 8080}}`:           "env must be an object of strings",
		`{"env": {"CORRAL_INSTANCE": "x"}}`: "CORRAL_INSTANCE is set by corral",
		`["x"]`:                             "the body is not a JSON object",
		`{"args": []} {}`:                   "more than one JSON value",
	} {
		var s Service
		err := cl.send(ctx, "POST", "/v1/services/a/start", nil, []byte(body), &s)
		wantCode(t, err, CodeBadRequest, want)
	}
	err := cl.send(ctx, "POST", "/v1/services/a/stop", nil, []byte(`{"args": []}`), new(Service))
	wantCode(t, err, CodeBadRequest, "stop takes no body")
	if s, _ := cl.Inspect(ctx, "a"); s.State != "stopped" || s.Starts != 0 {
		t.Fatalf("a refused body changed the service: %+v", s)
	}
}

// A diagnostic bundle has the services defined through the API, redacted
// as every file of it.
func TestBundleHasDefinedServices(t *testing.T) {
	dir := shortTempDir(t)
	cfgPath := filepath.Join(dir, "corral.toml")
	if err := os.WriteFile(cfgPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cl, _ := runDaemon(t, cfgPath, filepath.Join(dir, "s"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const secret = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"
	if _, err := cl.Define(ctx, "app", map[string]any{"command": []string{"x"}, "autostart": false, "env": map[string]string{"HF_TOKEN": secret}}); err != nil {
		t.Fatal(err)
	}
	path, err := cl.Bundle(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var found string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		if strings.Contains(string(b), secret) {
			t.Errorf("%s of the bundle has the secret", h.Name)
		}
		if strings.HasSuffix(h.Name, daemon.DefinitionsName) {
			found = string(b)
		}
	}
	if !strings.Contains(found, `"app"`) || !strings.Contains(found, "HF_TOKEN") {
		t.Fatalf("the bundle's %s: %q", daemon.DefinitionsName, found)
	}
}

// A daemon start never fails for the definitions it stores: one that no
// longer validates beside the file is left out and kept, saying why; a
// store that is not JSON is kept aside.
func TestStartWithStoredDefinitionsThatDoNotLoad(t *testing.T) {
	dir := shortTempDir(t)
	cfgPath := filepath.Join(dir, "corral.toml")
	if err := os.WriteFile(cfgPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "s")
	gone := filepath.Join(dir, "gone")
	if err := os.Mkdir(gone, 0o700); err != nil {
		t.Fatal(err)
	}
	cl, stop := runDaemon(t, cfgPath, state)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cl.Define(ctx, "app", map[string]any{"command": []string{"x"}, "autostart": false, "dir": gone}); err != nil {
		t.Fatal(err)
	}
	stop()
	os.Remove(gone)
	cl, stop = runDaemon(t, cfgPath, state)
	if _, err := cl.Inspect(ctx, "app"); CodeOf(err) != CodeUnknownService {
		t.Fatalf("a definition whose dir is gone was loaded: %v", err)
	}
	var said []string
	cl.Events(ctx, 0, false, func(e Event) error { said = append(said, e.Message); return nil })
	if want := "service app, defined through the API (services.json), was not loaded: config: definition of service app refused: services.app.dir: " + gone + " does not exist"; !strings.Contains(strings.Join(said, "\n"), want) {
		t.Fatalf("events:\n%s\nwant %q", strings.Join(said, "\n"), want)
	}
	store := filepath.Join(state, daemon.DefinitionsName)
	if b, _ := os.ReadFile(store); !strings.Contains(string(b), `"app"`) {
		t.Fatalf("the definition was not kept: %s", b)
	}
	// Back, it loads at the next reload.
	if err := os.Mkdir(gone, 0o700); err != nil {
		t.Fatal(err)
	}
	if res, err := cl.Reload(ctx); err != nil || !slices.Equal(res.Added, []string{"app"}) {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	stop()

	if err := os.WriteFile(store, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	cl, _ = runDaemon(t, cfgPath, state)
	said = nil
	cl.Events(ctx, 0, false, func(e Event) error { said = append(said, e.Message); return nil })
	if !strings.Contains(strings.Join(said, "\n"), "services.json was not a store of services (not JSON): kept aside as "+filepath.Join(state, "services.damaged-")) {
		t.Fatalf("events:\n%s", strings.Join(said, "\n"))
	}
	if list, _ := cl.List(ctx, false); len(list) != 0 {
		t.Fatalf("services: %+v", list)
	}
	if m, _ := filepath.Glob(filepath.Join(state, "services.damaged-*.json")); len(m) != 1 {
		t.Fatalf("kept aside: %v", m)
	}
}
