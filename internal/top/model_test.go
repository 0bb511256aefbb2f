package top

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/corral-sh/corral/client"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fakeDaemon answers List with what a test gives it and records the
// actions it is asked for.
type fakeDaemon struct {
	mu      sync.Mutex
	list    []client.Service
	listErr error
	calls   []string // "restart spin", ...
}

func (f *fakeDaemon) List(context.Context, bool) ([]client.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.list, f.listErr
}

func (f *fakeDaemon) record(verb, name string) (client.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, verb+" "+name)
	return client.Service{Name: name, State: "ready", PID: 4242, MemberCount: 1}, nil
}

func (f *fakeDaemon) Start(_ context.Context, name, _ string, _ bool) (client.Service, error) {
	return f.record("start", name)
}

func (f *fakeDaemon) Stop(_ context.Context, name string) (client.Service, error) {
	return f.record("stop", name)
}

func (f *fakeDaemon) Restart(_ context.Context, name, _ string, _ bool) (client.Service, error) {
	return f.record("restart", name)
}

func (f *fakeDaemon) EventsWith(context.Context, client.StreamOptions, func(client.Event) error) error {
	return nil
}

func (f *fakeDaemon) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// recorded are two readings of a real daemon one second apart (webui
// fixture tree, a spinning service, a failed one, a stopped one), taken
// with curl of /v1/services?members=1. The machine had no GPU: webui's
// gpu_memory was added by hand, as nvidia-smi would give it.
func recorded(t *testing.T) []Snapshot {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "services.json"))
	if err != nil {
		t.Fatal(err)
	}
	var snaps []Snapshot
	if err := json.Unmarshal(b, &snaps); err != nil {
		t.Fatal(err)
	}
	return snaps
}

// recordedEvents are the same daemon's last events (/v1/events?n=14).
func recordedEvents(t *testing.T) []client.Event {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "events.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []client.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e client.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	return evs
}

// UnmarshalJSON reads the recorded files' {"at", "services"}.
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	var v struct {
		At       time.Time        `json:"at"`
		Services []client.Service `json:"services"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	s.At, s.Services = v.At, v.Services
	return nil
}

// feed applies msgs in order, as Bubble Tea would, and returns the model
// and the last command.
func feed(m Model, msgs ...tea.Msg) (Model, tea.Cmd) {
	var cmd tea.Cmd
	for _, msg := range msgs {
		var tm tea.Model
		tm, cmd = m.Update(msg)
		m = tm.(Model)
	}
	return m, cmd
}

func key(s string) tea.KeyPressMsg {
	switch s {
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

func keys(ks ...string) []tea.Msg {
	out := make([]tea.Msg, len(ks))
	for i, k := range ks {
		out[i] = key(k)
	}
	return out
}

// loaded is a model fed the recorded readings and events at a size.
func loaded(t *testing.T, d Daemon, width, height int) Model {
	t.Helper()
	m := New(context.Background(), d, Options{})
	msgs := []tea.Msg{tea.WindowSizeMsg{Width: width, Height: height}}
	for _, s := range recorded(t) {
		msgs = append(msgs, s)
	}
	for _, e := range recordedEvents(t) {
		msgs = append(msgs, EventMsg(e))
	}
	m, _ = feed(m, msgs...)
	return m
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/top -run %s -update to write it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./internal/top -run %s -update rewrites it after a wanted change)\n got:\n%s\nwant:\n%s", name, t.Name(), got, want)
	}
}

func TestViewGolden(t *testing.T) {
	for _, tc := range []struct {
		name          string
		width, height int
		keys          []string
	}{
		// webui selected and expanded: its tree with RSS, CPU% and GPU.
		{"wide-tree.golden", 120, 36, []string{"down", "down", "enter"}},
		// The first service selected, collapsed, cut to 72 columns.
		{"narrow.golden", 72, 20, nil},
		// Too short for everything: the tree wins over the events, its
		// last members are counted.
		{"short-tree.golden", 90, 14, []string{"down", "down", "enter"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := loaded(t, &fakeDaemon{}, tc.width, tc.height)
			m, _ = feed(m, keys(tc.keys...)...)
			got := m.Render()
			golden(t, tc.name, got)
			lines := strings.Split(got, "\n")
			if len(lines) != tc.height {
				t.Errorf("%d lines, want the height, %d", len(lines), tc.height)
			}
			for _, l := range lines {
				if w := ansi.StringWidth(l); w > tc.width {
					t.Errorf("line of %d columns, wider than %d: %q", w, tc.width, l)
				}
			}
		})
	}
}

func TestPlainGolden(t *testing.T) {
	m := loaded(t, &fakeDaemon{}, 0, 0)
	golden(t, "plain.golden", m.Plain())
}

// Every line fits every width and the screen its height, down to a tiny
// terminal.
func TestFitsAnySize(t *testing.T) {
	base := loaded(t, &fakeDaemon{}, 0, 0)
	base, _ = feed(base, keys("down", "down", "enter")...)
	for _, w := range []int{1, 5, 20, 41, 80, 200} {
		for _, h := range []int{1, 3, 8, 24, 60} {
			m, _ := feed(base, tea.WindowSizeMsg{Width: w, Height: h})
			m.o.Color = true
			lines := strings.Split(m.Render(), "\n")
			if len(lines) != h {
				t.Errorf("%dx%d: %d lines", w, h, len(lines))
			}
			for _, l := range lines {
				if lw := ansi.StringWidth(l); lw > w {
					t.Errorf("%dx%d: a line of %d columns: %q", w, h, lw, l)
				}
			}
			if last := ansi.Strip(lines[len(lines)-1]); w >= 6 && !strings.HasPrefix(last, "q quit") {
				t.Errorf("%dx%d: the keys are not on the last line: %q", w, h, lines[len(lines)-1])
			}
		}
	}
}

// CPU% is processor seconds per second between two readings of the same
// instance (or the same process: pid and start), and unknown otherwise.
func TestCPUPercentFromTwoReadings(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	svc := func(instance string, cpu, worker float64) client.Service {
		return client.Service{Name: "web", State: "ready", Instance: instance, PID: 10, StartedAt: t0.Add(-time.Minute),
			MemberCount: 2, CPUSeconds: cpu, Members: []client.Process{
				{PID: 10, PPID: 1, PGID: 10, Cmdline: []string{"python", "launch.py"}, StartTicks: 5, CPUSeconds: cpu - worker},
				{PID: 11, PPID: 10, PGID: 10, Cmdline: []string{"python", "worker"}, StartTicks: 6, CPUSeconds: worker},
			}}
	}
	m := New(context.Background(), &fakeDaemon{}, Options{})
	m, _ = feed(m, Snapshot{At: t0, Services: []client.Service{svc("a", 10, 4)}})
	if _, ok := m.cpu["web"]; ok {
		t.Errorf("a first reading has a CPU%%: %v", m.cpu)
	}
	// 1.5 s of processor time in 500 ms: three cores' worth.
	m, _ = feed(m, Snapshot{At: t0.Add(500 * time.Millisecond), Services: []client.Service{svc("a", 11.5, 4.25)}})
	if got := m.cpu["web"]; fmt.Sprintf("%.1f", got) != "300.0" {
		t.Errorf("CPU%% = %v, want 300.0", got)
	}
	if got := m.memberCPU[memberKey{11, 6}]; fmt.Sprintf("%.1f", got) != "50.0" {
		t.Errorf("the worker's CPU%% = %v, want 50.0", got)
	}
	if !strings.Contains(m.Plain(), "300.0%") {
		t.Errorf("the table does not show 300.0%%:\n%s", m.Plain())
	}
	// A member exited and took its share along: the figure went down, so
	// this interval has no rate (not a negative one).
	m, _ = feed(m, Snapshot{At: t0.Add(time.Second), Services: []client.Service{svc("a", 11, 4.25)}})
	if v, ok := m.cpu["web"]; ok {
		t.Errorf("CPU%% after the figure went down = %v, want none", v)
	}
	// A new instance starts over, whatever its figure.
	m, _ = feed(m, Snapshot{At: t0.Add(2 * time.Second), Services: []client.Service{svc("b", 12, 4.5)}})
	if v, ok := m.cpu["web"]; ok {
		t.Errorf("CPU%% of a new instance's first reading = %v, want none", v)
	}
	// A failed reading keeps the figures; the next good one measures over
	// the whole gap.
	m, _ = feed(m, Snapshot{At: t0.Add(3 * time.Second), Err: errors.New("client: no daemon")},
		Snapshot{At: t0.Add(4 * time.Second), Services: []client.Service{svc("b", 13, 4.5)}})
	if got := m.cpu["web"]; fmt.Sprintf("%.1f", got) != "50.0" {
		t.Errorf("CPU%% over a gap = %v, want 50.0", got)
	}
	// macOS reports no processor time: "-", never a made-up 0%.
	mac := New(context.Background(), &fakeDaemon{}, Options{NoCPU: true})
	mac, _ = feed(mac, Snapshot{At: t0, Services: []client.Service{svc("a", 0, 0)}},
		Snapshot{At: t0.Add(time.Second), Services: []client.Service{svc("a", 0, 0)}})
	if strings.Contains(mac.Plain(), "0.0%") {
		t.Errorf("NoCPU shows a CPU%%:\n%s", mac.Plain())
	}
}

// The recorded spinning service: (3.10 − 2.13) s of CPU over the 1.028 s
// between the two readings.
func TestRecordedCPU(t *testing.T) {
	m := loaded(t, &fakeDaemon{}, 0, 0)
	if got := fmt.Sprintf("%.1f", m.cpu["spin"]); got != "94.3" {
		t.Errorf("spin's CPU%% = %s, want 94.3", got)
	}
	if _, ok := m.cpu["broken"]; ok {
		t.Errorf("a failed service without an instance has a CPU%%")
	}
}

func TestKeysSendActionsForTheSelectedService(t *testing.T) {
	d := &fakeDaemon{}
	m := loaded(t, d, 100, 30)
	if m.selected != "broken" {
		t.Fatalf("selected %q first, want the first row, broken", m.selected)
	}
	m, _ = feed(m, keys("down", "down", "down", "down", "up")...) // the last row is the bound
	if m.selected != "webui" {
		t.Fatalf("selected %q, want webui", m.selected)
	}

	// r asks first; nothing is sent until y.
	m, cmd := feed(m, key("r"))
	if cmd != nil || len(d.Calls()) != 0 {
		t.Fatalf("r sent something before the confirmation: %v", d.Calls())
	}
	if last := lastLine(m.Render()); !strings.Contains(last, "restart webui? y: yes") {
		t.Errorf("no confirmation on the last line: %q", last)
	}
	m, cmd = feed(m, key("y"))
	if cmd == nil {
		t.Fatal("y gave no command")
	}
	if !strings.Contains(m.Render(), "restarting… ") && !strings.Contains(m.Render(), "restarting webui…") {
		t.Errorf("the restart under way is not shown:\n%s", m.Render())
	}
	done := cmd()
	if got := d.Calls(); len(got) != 1 || got[0] != "restart webui" {
		t.Fatalf("calls = %v, want [restart webui]", got)
	}
	m, _ = feed(m, done)
	if last := lastLine(m.Render()); !strings.Contains(last, "restart webui: ready (pid 4242") {
		t.Errorf("the result is not shown: %q", last)
	}

	// Any key but y is a no, q included (it does not quit then).
	m, cmd = feed(m, key("s"), key("q"))
	if cmd != nil || len(d.Calls()) != 1 || m.quitting {
		t.Errorf("s then q: cmd %v, calls %v, quitting %v", cmd != nil, d.Calls(), m.quitting)
	}
	if !strings.Contains(lastLine(m.Render()), "stop webui: cancelled") {
		t.Errorf("the no is not said: %q", lastLine(m.Render()))
	}

	// s stops and S starts, each for the row selected then.
	m, cmd = feed(m, key("up"), key("s"), key("y"))
	cmd()
	m, cmd = feed(m, key("up"), key("S"), key("y"))
	cmd()
	if got := strings.Join(d.Calls(), ", "); got != "restart webui, stop spin, start broken" {
		t.Errorf("calls = %s", got)
	}

	// q quits; so does ctrl+c, even while a confirmation is asked.
	for _, ks := range [][]string{{"q"}, {"r", "ctrl+c"}} {
		q, cmd := feed(m, keys(ks...)...)
		if cmd == nil || !q.quitting {
			t.Fatalf("%v did not quit", ks)
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Errorf("%v: the command is not tea.Quit", ks)
		}
	}
}

// A second key for a service whose action is under way is refused, and
// keys without a service do nothing.
func TestKeysWithoutTarget(t *testing.T) {
	d := &fakeDaemon{}
	m := New(context.Background(), d, Options{})
	m, cmd := feed(m, key("r"), key("y"), key("down"), key("enter"))
	if cmd != nil || len(d.Calls()) != 0 {
		t.Errorf("keys before any reading sent %v", d.Calls())
	}
	m = loaded(t, d, 80, 24)
	m, _ = feed(m, key("r"), key("y"), key("r"))
	if m.confirm != nil || !strings.Contains(m.Render(), "broken: restarting already") {
		t.Errorf("a second r for a service being restarted is not refused:\n%s", m.Render())
	}
}

func TestDaemonNotAnswering(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 5, 0, time.UTC)
	m := loaded(t, &fakeDaemon{}, 100, 24)
	if !strings.HasPrefix(m.Render(), "corral top · 4 services, 2 running") {
		t.Fatalf("header: %q", strings.SplitN(m.Render(), "\n", 2)[0])
	}
	noDaemon := errors.New("client: no corral daemon is running for /x/.corral (no socket /x/.corral/corral.sock): start one with: corral up")
	m, cmd := feed(m, Snapshot{At: at, Err: noDaemon}, Snapshot{At: at.Add(time.Second), Err: noDaemon})
	if cmd == nil {
		t.Fatal("a failed reading schedules no next one")
	}
	lines := strings.Split(m.Render(), "\n")
	if want := "corral top: daemon not answering since 10:00:05, retrying every 1s (figures of 02:41:42)"; lines[0] != want {
		t.Errorf("header:\n got %q\nwant %q", lines[0], want)
	}
	if !strings.HasPrefix(lines[1], "client: no corral daemon is running") {
		t.Errorf("the error is not said: %q", lines[1])
	}
	if !strings.Contains(m.Render(), "webui") {
		t.Errorf("the last figures are gone:\n%s", m.Render())
	}
	// A new daemon answers: the view goes on.
	m, _ = feed(m, Snapshot{At: at.Add(2 * time.Second), Services: []client.Service{{Name: "webui", State: "starting"}}})
	if !strings.HasPrefix(m.Render(), "corral top · 1 service, 0 running · 10:00:07") {
		t.Errorf("after the daemon came back:\n%s", m.Render())
	}
	// Before any answer.
	if got := New(context.Background(), &fakeDaemon{}, Options{}).Render(); !strings.HasPrefix(got, "corral top: connecting to the daemon") {
		t.Errorf("before a reading: %q", got)
	}
}

// Init reads at once, and each reading schedules the next.
func TestRefreshCycle(t *testing.T) {
	d := &fakeDaemon{list: []client.Service{{Name: "web", State: "ready"}}}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	m := New(context.Background(), d, Options{Interval: time.Millisecond, Now: func() time.Time { return at }})
	snap, ok := m.Init()().(Snapshot)
	if !ok || snap.Err != nil || len(snap.Services) != 1 || !snap.At.Equal(at) {
		t.Fatalf("Init's command gave %#v", snap)
	}
	m, cmd := feed(m, snap)
	if _, ok := cmd().(refreshMsg); !ok {
		t.Fatal("a reading does not schedule the next")
	}
	m, cmd = feed(m, refreshMsg{})
	if _, ok := cmd().(Snapshot); !ok {
		t.Fatal("a refresh does not read")
	}
	// After q, nothing more is asked.
	m, _ = feed(m, key("q"))
	if _, cmd = feed(m, snap); cmd != nil {
		t.Error("a reading after q schedules another")
	}
}

// Text from a supervised program (its command line, its events) never
// reaches the terminal as control characters.
func TestControlCharactersAreCleaned(t *testing.T) {
	evil := "\x1b]0;owned\x07\x1b[2J"
	m := New(context.Background(), &fakeDaemon{}, Options{})
	m, _ = feed(m, tea.WindowSizeMsg{Width: 200, Height: 20},
		Snapshot{At: time.Unix(0, 0), Services: []client.Service{{Name: "web", State: "ready", Instance: "i", PID: 1, Reason: evil,
			Members: []client.Process{{PID: 1, Cmdline: []string{"python", evil}}}}}},
		EventMsg{Kind: "exit", Service: "web", Message: "bye" + evil}, key("enter"))
	if out := m.Render(); strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("control characters on the screen: %q", out)
	}
}

// With colour, a state has its colour, and the selected row's reverse
// video survives it.
func TestColor(t *testing.T) {
	m := loaded(t, &fakeDaemon{}, 120, 30)
	m.o.Color = true
	out := m.Render()
	if !strings.Contains(out, "\x1b[32mready") {
		t.Errorf("ready is not green:\n%q", out)
	}
	sel := strings.Split(out, "\n")[2] // header, titles, the first row (selected)
	if !strings.HasPrefix(sel, "\x1b[7m> ") || !strings.Contains(sel, "\x1b[31mfailed") || strings.Contains(sel, "\x1b[0m") {
		t.Errorf("selected row: %q", sel)
	}
	if strings.Contains(loaded(t, &fakeDaemon{}, 120, 30).Render(), "\x1b[") {
		t.Error("escape codes without Color")
	}
}

// Events beyond Options.Events are dropped, oldest first.
func TestEventsKept(t *testing.T) {
	m := New(context.Background(), &fakeDaemon{}, Options{Events: 3})
	for i := range 5 {
		m, _ = feed(m, EventMsg{Seq: uint64(i + 1), Kind: "state"})
	}
	if len(m.events) != 3 || m.events[0].Seq != 3 || m.events[2].Seq != 5 {
		t.Errorf("kept %v", m.events)
	}
}

func lastLine(s string) string {
	lines := strings.Split(s, "\n")
	return lines[len(lines)-1]
}

// The fake must stay a Daemon (the interface *client.Client has).
var (
	_ Daemon = (*fakeDaemon)(nil)
	_ Daemon = (*client.Client)(nil)
)
