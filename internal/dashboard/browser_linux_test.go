package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/corral-sh/corral/internal/api"
	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/dashboard"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/reclaim"
	"github.com/corral-sh/corral/internal/supervisor"
	"github.com/corral-sh/corral/internal/testproc"
)

// progressReady is the last line the progress fixture prints.
const progressReady = "progress: ready"

func init() {
	// progress prints as a model loader does: a tqdm bar redrawn with
	// '\r', then a bar printed as a new line at each step (what tqdm does
	// through some loggers), with plain lines between.
	testproc.Register("progress", func([]string) {
		fmt.Println("model loading")
		for i := 0; i <= 100; i += 10 {
			fmt.Printf("\r%3d%%|%-10s|", i, strings.Repeat("#", i/10))
		}
		fmt.Println()
		fmt.Println("weights loaded")
		for i := 1; i <= 10; i++ {
			fmt.Printf("%3d%%|%-10s| %d/10 [00:%02d<00:%02d]\n", 10*i, strings.Repeat("#", i), i, i, 10-i)
		}
		fmt.Println("all steps done")
		fmt.Println(progressReady)
		select {}
	})
}

// What the log panel must show of the progress fixture's output: each
// bar as its last state, once.
var progressShown = []string{
	"model loading",
	"100%|##########|",
	"weights loaded",
	"100%|##########| 10/10 [00:10<00:00]",
	"all steps done",
	progressReady,
}

// chromium returns Debian's chromium, or skips the test (fails it where
// CORRAL_REAL_PROGRAMS=1 says the programs must be there, as in CI).
func chromium(t *testing.T) string {
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CORRAL_REAL_PROGRAMS") == "1" {
		t.Fatal("chromium is not installed, and CORRAL_REAL_PROGRAMS=1 says it must be (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium): the dashboard's browser test needs it")
	return ""
}

// browser starts a headless chromium for ctx. Exceptions the page throws
// are collected; the test fails on any at its end.
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // chromium refuses to run as root with its sandbox
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		cancel()
		cancelAlloc()
		t.Fatalf("starting %s: %v", path, err)
	}
	var mu sync.Mutex
	var thrown []string
	done := make(chan struct{})
	msgs := chromedp.Console(bctx)
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() {
				mu.Lock()
				thrown = append(thrown, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to be gone
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, e := range thrown {
			t.Errorf("the page threw: %s", e)
		}
	})
	return bctx
}

// poll waits until the JavaScript expression is truthy and returns its
// value: the page updates by itself, so the test waits for what it must
// come to show.
func poll[T any](t *testing.T, ctx context.Context, what, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		last, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %s: %v\nthe page shows:\n%s", what, err, last)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("CORRAL_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the dashboard: %s (%d bytes)", path, len(png))
}

// testDaemon is what the API's routes need around a real supervisor.
type testDaemon struct{ sup *supervisor.Supervisor }

func (d testDaemon) Supervisor() *supervisor.Supervisor { return d.sup }
func (d testDaemon) Info() any {
	return map[string]any{"pid": os.Getpid(), "version": "test", "mechanism": "test", "config": "corral.toml"}
}
func (d testDaemon) Reload(context.Context) (supervisor.ReloadResult, error) {
	return supervisor.ReloadResult{}, nil
}
func (d testDaemon) Shutdown(ctx context.Context) supervisor.ShutdownResult {
	return d.sup.Shutdown(ctx)
}
func (d testDaemon) Reap(context.Context, bool) ([]reclaim.Report, error) { return nil, nil }

// The dashboard in a real browser, against a real supervisor whose
// services are real process trees: it lists them with their states,
// shows a service's log with its progress bars as their last state, and
// its restart button replaces the instance and leaves none of the old
// tree's processes.
func TestBrowserDashboard(t *testing.T) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("corral.toml", fmt.Sprintf(`
[services.alpha-webui]
command = ['%[1]s', "webui"]
env = { CORRAL_TESTPROC = "webui", GORACE = "atexit_sleep_ms=0" }
autostart = false
profiles = { guarded = ["--workers", "2"] }
ready = { log = %[2]q, timeout = "30s" }
stop = { grace = "5s" }

[services.beta-progress]
command = ['%[1]s', "progress"]
env = { CORRAL_TESTPROC = "progress", GORACE = "atexit_sleep_ms=0" }
autostart = false
ready = { log = %[3]q, timeout = "30s" }
stop = { grace = "5s" }

[services.gamma-idle]
command = ['%[1]s', "sleep"]
env = { CORRAL_TESTPROC = "sleep", GORACE = "atexit_sleep_ms=0" }
autostart = false
`, exe, testproc.TreeStarted, progressReady))
	if err != nil {
		t.Fatal(err)
	}
	sup, err := supervisor.New(cfg, supervisor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if res := sup.Shutdown(context.Background()); len(res.Survivors) > 0 || len(res.Errors) > 0 {
			t.Errorf("shutdown: %+v", res)
		}
	})
	dash := dashboard.New(dashboard.Options{API: api.Handler(testDaemon{sup}, slog.New(slog.DiscardHandler))})
	pageURL, err := dash.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(pageURL)
	base, tok := "http://"+u.Host, u.Query().Get("token")

	// The services start as a script would start them: through the
	// dashboard, with the token as a bearer.
	for _, name := range []string{"alpha-webui", "beta-progress"} {
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/services/"+name+"/ensure?timeout=30s", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		a := do(t, &http.Client{}, req)
		if a.status != http.StatusOK {
			t.Fatalf("ensure %s through the dashboard: %d %s", name, a.status, a.body)
		}
	}

	bctx := browser(t, ctx)
	started := time.Now()

	// Without the token: refused, and nothing of the services shown.
	resp, err := chromedp.Run(bctx, chromedp.NavigateResponse(base+"/"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusUnauthorized || strings.Contains(text, "alpha-webui") || !strings.Contains(text, "token") {
		t.Fatalf("the page without the token: %d %q", resp.Status, text)
	}

	// With it: every service and its state, and the token gone from the
	// address bar.
	if err := chromedp.Do(bctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatal(err)
	}
	states := poll[map[string]string](t, bctx, "the services' states", `(() => {
		const o = {};
		for (const tr of document.querySelectorAll('#services tbody tr[data-service]')) o[tr.dataset.service] = tr.querySelector('.state').textContent;
		return o['alpha-webui'] === 'ready' && o['beta-progress'] === 'ready' && o['gamma-idle'] === 'stopped' ? o : null;
	})()`)
	if len(states) != 3 {
		t.Fatalf("the page lists %v", states)
	}
	if loc, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`location.href`)); strings.Contains(loc, "token") {
		t.Errorf("the token stays in the address bar: %s", loc)
	}

	// The log of the progress fixture: its bars as their last state.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`button[data-action="logs"][data-service="beta-progress"]`))); err != nil {
		t.Fatal(err)
	}
	shown := poll[[]string](t, bctx, "the progress fixture's log", fmt.Sprintf(`(() => {
		const ls = [...document.querySelectorAll('#logs .line .t')].map(e => e.textContent);
		return ls.includes(%q) ? ls : null;
	})()`, progressReady))
	if !reflect.DeepEqual(shown, progressShown) {
		t.Errorf("the log panel shows\n%q\nwant\n%q", shown, progressShown)
	}

	// Restart with a profile typed in (the status lists no profiles, so
	// the chooser is a text field), by a click.
	old, err := sup.Inspect("alpha-webui")
	if err != nil {
		t.Fatal(err)
	}
	oldTree := testproc.Carriers(old.Instance)
	if len(oldTree) != testproc.WebUISize {
		t.Fatalf("the old instance has %d processes (%v), want %d", len(oldTree), oldTree, testproc.WebUISize)
	}
	_, events, unsubscribe := sup.Bus().Subscribe(0)
	defer unsubscribe()
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.CSS(`.profile-input[data-service="alpha-webui"]`), "guarded"),
		chromedp.Click(chromedp.CSS(`button[data-action="restart"][data-service="alpha-webui"]`)),
	); err != nil {
		t.Fatal(err)
	}
	var newInstance string
	for newInstance == "" {
		select {
		case e := <-events:
			if e.Kind == journal.Ready && e.Service == "alpha-webui" && e.Instance != old.Instance {
				newInstance = e.Instance
			}
		case <-ctx.Done():
			t.Fatal("the click on restart did not bring a new instance to readiness")
		}
	}
	// The page follows by itself: the new instance, ready (the ready
	// event comes just before the status says so: the page waits for the
	// status, and the test for the page).
	pagePID := poll[string](t, bctx, "the new instance on the page", fmt.Sprintf(`(() => {
		const tr = document.querySelector('tr[data-service="alpha-webui"]');
		return tr.dataset.instance === %q && tr.dataset.state === 'ready' ? tr.querySelector('.pid').textContent : null;
	})()`, newInstance))
	now, err := sup.Inspect("alpha-webui")
	if err != nil {
		t.Fatal(err)
	}
	if now.Instance != newInstance || now.State != "ready" || now.Profile != "guarded" || pagePID != fmt.Sprint(now.PID) {
		t.Fatalf("after the restart: instance %s (ready event: %s), state %s, profile %q, pid %d (the page: %s)", now.Instance, newInstance, now.State, now.Profile, now.PID, pagePID)
	}
	if left := testproc.Carriers(old.Instance); len(left) > 0 {
		t.Fatalf("the old instance's processes survived its restart: %v", left)
	}
	if n := len(testproc.Carriers(newInstance)); n == 0 || n != now.MemberCount {
		t.Fatalf("the new instance has %d processes, its status says %d", n, now.MemberCount)
	}

	// The member tree, expanded: every process of the new instance.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`button[data-action="tree"][data-service="alpha-webui"]`))); err != nil {
		t.Fatal(err)
	}
	pids := poll[[]int](t, bctx, "the member tree", fmt.Sprintf(`(() => {
		const ps = [...document.querySelectorAll('tr[data-service="alpha-webui"] + tr.tree-row .pid')].map(e => +e.textContent);
		return ps.length === %d ? ps : null;
	})()`, now.MemberCount))
	var want []int
	for _, m := range now.Members {
		want = append(want, m.PID)
	}
	slices.Sort(pids)
	slices.Sort(want)
	if !slices.Equal(pids, want) {
		t.Errorf("the tree shows %v, the status has %v", pids, want)
	}

	// The event stream saw it.
	poll[bool](t, bctx, "both ready events", `[...document.querySelectorAll('#events .ev-ready .svc')].filter(e => e.textContent === 'alpha-webui').length >= 2`)

	screenshot(t, bctx, "dashboard.png")
	t.Logf("browser part: %v (the whole test so far %v)", time.Since(started).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// The page against a stand-in API whose streams hold what a daemon may
// send besides items (blank lines, heartbeats, garbage, an item split
// between two writes) and a status with CPU, GPU and profiles: the page
// reads the items and only them, redraws progress bars in place, and
// offers the profiles to choose from.
func TestBrowserStreamsAndFigures(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	started := time.Now().Add(-65 * time.Second).UTC().Format(time.RFC3339Nano)
	view := func() map[string]any {
		return map[string]any{
			"name": "fake", "state": "ready", "reason": "ready", "instance": "i1", "pid": 42, "leader": 42,
			"started_at": started, "restarts": 3, "starts": 4, "member_count": 3, "rss": 3 << 20,
			"cpu_seconds": 1.5, "gpu_memory": 2 << 30, "profiles": []string{"guarded", "lowvram"},
			"members": []map[string]any{
				{"pid": 42, "ppid": 1, "cmdline": []string{"python", "launch.py"}, "rss": 1 << 20, "gpu_memory": 2 << 30},
				{"pid": 43, "ppid": 42, "cmdline": []string{"python", "worker.py"}, "rss": 1 << 20},
				{"pid": 44, "ppid": 43, "cmdline": []string{"python", "-c", "pass"}, "rss": 1 << 20},
			},
		}
	}
	var mu sync.Mutex
	var actions []string
	send := func(w http.ResponseWriter, chunks ...string) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Corral-Heartbeat-Ms", "60000")
		for _, c := range chunks {
			fmt.Fprint(w, c)
			w.(http.Flusher).Flush()
		}
	}
	hold := func(w http.ResponseWriter, r *http.Request, chunks ...string) {
		send(w, chunks...)
		<-r.Context().Done() // a follow: open until the page leaves
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/daemon", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"pid": 7, "version": "v-test", "mechanism": "cgroup-v2"})
	})
	mux.HandleFunc("GET /v1/services", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]any{view()})
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		actions = append(actions, "reload")
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"added": []string{"new"}, "removed": []string{}, "changed": []string{"fake"}, "unchanged": []string{}})
	})
	mux.HandleFunc("POST /v1/services/{name}/{verb}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		actions = append(actions, r.PathValue("verb")+" "+r.PathValue("name")+" profile="+r.URL.Query().Get("profile"))
		mu.Unlock()
		json.NewEncoder(w).Encode(view())
	})
	var logQueries []string
	mux.HandleFunc("GET /v1/services/fake/logs", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		logQueries = append(logQueries, r.URL.RawQuery)
		mu.Unlock()
		if r.URL.Query().Has("after") {
			// The page came back after the end of the stream: it resumes.
			hold(w, r, `{"seq":9,"time":"2026-01-02T03:04:06Z","stream":"stdout","text":"after the reconnect"}`+"\n")
			return
		}
		// The first answer ends after its items, as when a daemon goes away.
		send(w,
			"\n",
			`{"heartbeat":true}`+"\n",
			"not json at all\n",
			`[1,2,3]`+"\n",
			`{"seq":1,"time":"2026-01-02T03:04:05Z","stream":"stdout","text":"hello"}`+"\n",
			`{"seq":2,"time":"2026-01-02T03:04:05Z","stream":"stdout","text":"  0%|    |\r 50%|##  |\r100%|####|\r"}`+"\n",
			`{"seq":3,"time":"2026-01-02T03:04:05Z","stream":"stdout","text":"loaded"}`+"\n",
			`{"seq":4,"time":"2026-01-02T03:04:05Z","stream":"stdout","text":" 10%|#   | 1/10 [00:01<00:09]"}`+"\n",
			`{"seq":5,"time":"2026-01-02T03:04:05Z","stream":"stdout","te`, // an item split between two writes
			`xt":" 20%|##  | 2/10 [00:02<00:08]"}`+"\n",
			"   \n",
			`{"seq":6,"time":"2026-01-02T03:04:05Z","stream":"stderr","text":"\u001b[33mwarning\u001b[0m: slow disk"}`+"\n",
			`{"seq":7}`+"\n",
			`{"heartbeat":true}`+"\n",
			`{"seq":8,"time":"2026-01-02T03:04:05Z","stream":"stdout","text":"<b>not markup</b>"}`+"\n",
		)
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		hold(w, r,
			`{"heartbeat":true}`+"\n",
			"\n",
			`{"seq":1,"time":"2026-01-02T03:04:05Z","kind":"spawn","service":"fake","pid":42,"message":"spawned the leader"}`+"\n",
			"{broken\n",
			`{"seq":2,"kind":""}`+"\n",
			`{"seq":3,"time":"2026-01-02T03:04:06Z","kind":"ready","service":"fake","message":"ready after 1s"}`+"\n",
		)
	})
	dash := dashboard.New(dashboard.Options{API: mux})
	pageURL, err := dash.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bctx := browser(t, ctx)
	if err := chromedp.Do(bctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatal(err)
	}
	lines := poll[[]map[string]string](t, bctx, "the log lines", `(() => {
		const ls = [...document.querySelectorAll('#logs .line')].map(e => ({text: e.querySelector('.t').textContent, stream: e.dataset.stream, err: String(e.classList.contains('err'))}));
		return ls.some(l => l.text === 'after the reconnect') ? ls : null;
	})()`)
	want := []map[string]string{
		{"text": "hello", "stream": "stdout", "err": "false"},
		{"text": "100%|####|", "stream": "stdout", "err": "false"},
		{"text": "loaded", "stream": "stdout", "err": "false"},
		{"text": " 20%|##  | 2/10 [00:02<00:08]", "stream": "stdout", "err": "false"},
		{"text": "warning: slow disk", "stream": "stderr", "err": "true"},
		{"text": "<b>not markup</b>", "stream": "stdout", "err": "false"},
		{"text": "after the reconnect", "stream": "stdout", "err": "false"},
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("the log panel shows\n%v\nwant\n%v", lines, want)
	}
	mu.Lock()
	if !reflect.DeepEqual(logQueries, []string{"n=200&follow=1", "after=8&follow=1"}) {
		t.Errorf("the page asked for the log with %q, want the last 200 lines, then to resume after line 8", logQueries)
	}
	mu.Unlock()
	if n, _ := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('#logs b').length`)); n != 0 {
		t.Errorf("a log line's text became markup")
	}
	evs := poll[[]string](t, bctx, "the events", `(() => {
		const es = [...document.querySelectorAll('#events .line')].map(e => e.querySelector('.kind').textContent + ' ' + e.querySelector('.t').textContent);
		return es.length >= 2 ? es : null;
	})()`)
	if !reflect.DeepEqual(evs, []string{"ready ready after 1s", "spawn spawned the leader (pid 42)"}) {
		t.Errorf("the events panel shows %q", evs)
	}

	// What counts as a progress bar, and what a '\r' leaves shown.
	for _, c := range []struct {
		raw, shown string
		progress   bool
	}{
		{" 45%|████▌     | 45/100 [00:01<00:02, 30.1it/s]", " 45%|████▌     | 45/100 [00:01<00:02, 30.1it/s]", true},
		{"Loading:  45%|####5     | 45/100", "Loading:  45%|####5     | 45/100", true},
		{"45it [00:01, 30.1it/s]", "45it [00:01, 30.1it/s]", true},
		{"[=====>    ]  42%", "[=====>    ]  42%", true},
		{"   ━━━━━━━━━━━━━━━━ 1.2/3.4 MB 5.0 MB/s eta 0:00:01", "   ━━━━━━━━━━━━━━━━ 1.2/3.4 MB 5.0 MB/s eta 0:00:01", true},
		{"a\rb\r", "b", true},
		{"step 1\rstep 2", "step 2", true},
		{"\x1b[32mRunning\x1b[0m on local URL:  http://127.0.0.1:7860", "Running on local URL:  http://127.0.0.1:7860", false},
		{"2026-01-02 [12:30] started", "2026-01-02 [12:30] started", false},
		{"GET /api 200 | 12ms", "GET /api 200 | 12ms", false},
		{"loaded 50% of the weights", "loaded 50% of the weights", false},
	} {
		raw, _ := json.Marshal(c.raw)
		got, err := chromedp.Run(bctx, chromedp.Evaluate[[]any](fmt.Sprintf(`(() => {
			const d = window.corralDashboard, raw = %s, shown = d.lastState(raw);
			return [shown, d.isProgress(raw, shown)];
		})()`, raw)))
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != c.shown || got[1] != c.progress {
			t.Errorf("%q: shown as %q, progress %v; want %q, %v", c.raw, got[0], got[1], c.shown, c.progress)
		}
	}

	// The figures: uptime, RSS, CPU, GPU memory, and the tree with the
	// member's GPU memory.
	cells := poll[map[string]string](t, bctx, "the figures", `(() => {
		const tr = document.querySelector('tr[data-service="fake"]');
		if (!tr || !document.querySelector('#services').classList.contains('has-gpu')) return null;
		const c = tr.querySelectorAll('td');
		return {uptime: c[2].textContent, restarts: c[3].textContent, pid: c[4].textContent, rss: c[6].textContent, cpu: c[7].textContent, gpu: c[8].textContent,
			cpuShown: getComputedStyle(c[7]).display, daemon: document.querySelector('#daemon').textContent};
	})()`)
	if !strings.HasPrefix(cells["uptime"], "1m ") || cells["restarts"] != "3" || cells["pid"] != "42" || cells["rss"] != "3.00 MiB" ||
		cells["gpu"] != "2.00 GiB" || cells["cpuShown"] == "none" || !strings.Contains(cells["cpu"], "1.5 s") && !strings.HasSuffix(cells["cpu"], "%") ||
		!strings.Contains(cells["daemon"], "v-test") {
		t.Errorf("the row shows %v", cells)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`button[data-action="tree"][data-service="fake"]`))); err != nil {
		t.Fatal(err)
	}
	nested := poll[string](t, bctx, "the tree", `(() => {
		const li = document.querySelector('tr.tree-row:not([hidden]) ul.tree > li > ul > li > ul > li .pid');
		return li ? li.textContent + ' ' + document.querySelector('tr.tree-row ul.tree > li').textContent : null;
	})()`)
	if !strings.HasPrefix(nested, "44 ") || !strings.Contains(nested, "GPU 2.00 GiB") || !strings.Contains(nested, "python launch.py") {
		t.Errorf("the tree: %q", nested)
	}

	// The profiles are offered; the chosen one goes with the restart.
	options := poll[[]string](t, bctx, "the profile chooser", `(() => {
		const s = document.querySelector('select.profile-input[data-service="fake"]');
		return s ? [...s.options].map(o => o.value) : null;
	})()`)
	if !reflect.DeepEqual(options, []string{"", "guarded", "lowvram"}) {
		t.Fatalf("the chooser offers %q", options)
	}
	if err := chromedp.Do(bctx,
		chromedp.SetValue(chromedp.CSS(`select.profile-input[data-service="fake"]`), "lowvram"),
		chromedp.Click(chromedp.CSS(`button[data-action="restart"][data-service="fake"]`)),
	); err != nil {
		t.Fatal(err)
	}
	// The buttons wait for the answer before they take another click.
	poll[bool](t, bctx, "the answer to the restart", `document.querySelector('#activity').textContent === 'restart fake: done' && !document.querySelector('button[data-action="stop"][data-service="fake"]').disabled`)
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`button[data-action="stop"][data-service="fake"]`))); err != nil {
		t.Fatal(err)
	}
	poll[bool](t, bctx, "the answer to the stop", `document.querySelector('#activity').textContent === 'stop fake: done'`)
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#reload`))); err != nil {
		t.Fatal(err)
	}
	poll[bool](t, bctx, "the answer to the reload", `document.querySelector('#activity').textContent === 'reloaded: added new; changed fake'`)
	mu.Lock()
	got := slices.Clone(actions)
	mu.Unlock()
	if !reflect.DeepEqual(got, []string{"restart fake profile=lowvram", "stop fake profile=", "reload"}) {
		t.Errorf("the API got %q", got)
	}
	screenshot(t, bctx, "dashboard-figures.png")
}
