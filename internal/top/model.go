package top

import (
	"context"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/corral-sh/corral/client"
)

// Daemon is what top asks of the daemon; *client.Client has it.
type Daemon interface {
	List(ctx context.Context, members bool) ([]client.Service, error)
	Start(ctx context.Context, name, profile string, wait bool) (client.Service, error)
	Stop(ctx context.Context, name string) (client.Service, error)
	Restart(ctx context.Context, name, profile string, wait bool) (client.Service, error)
	EventsWith(ctx context.Context, o client.StreamOptions, fn func(client.Event) error) error
}

// Snapshot is one reading of the services: what List answered at At, or
// the error it failed with (the daemon is not answering).
type Snapshot struct {
	At       time.Time
	Services []client.Service
	Err      error
}

// EventMsg is one event of the daemon's stream.
type EventMsg client.Event

// ActionDone says how a start, stop or restart asked for with a key went.
type ActionDone struct {
	Verb, Service string
	Result        client.Service
	Err           error
}

// refreshMsg asks for the next Snapshot once the interval has passed.
type refreshMsg struct{}

// Options set up a Model.
type Options struct {
	// Interval is how often the services are read; default 1s.
	Interval time.Duration
	// ListTimeout bounds one reading, so that a hung daemon shows as not
	// answering instead of freezing the view; default 5s.
	ListTimeout time.Duration
	// Color styles states and titles with ANSI colours (Bubble Tea lowers
	// them to what the terminal can show, and drops them for NO_COLOR).
	Color bool
	// NoCPU: the platform does not measure processor time (macOS reports
	// 0), so CPU% would be a made-up 0; it shows "-" instead.
	NoCPU bool
	// Now is the clock a reading is stamped with; default time.Now. The
	// model itself never reads it: only the command that takes a reading.
	Now func() time.Time
	// Events is how many events the model keeps (and at most shows);
	// default 100.
	Events int
}

// sample is the processor time of one service instance or member at a
// reading, for a rate at the next one.
type sample struct {
	key string // the instance (service) or pid and start (member) it belongs to
	cpu float64
	at  time.Time
}

// memberKey names one process across readings: a pid alone may be reused.
type memberKey struct {
	pid   int
	start uint64
}

// confirmation is a start, stop or restart that waits for "y".
type confirmation struct{ verb, service string }

// Model is corral top's state. Its zero value is not usable: use New.
type Model struct {
	d   Daemon
	ctx context.Context
	o   Options

	width, height int

	services []client.Service
	at       time.Time // when services were read
	read     bool      // a reading has come (services may still be empty)
	down     error     // the last reading failed: the daemon does not answer
	downAt   time.Time // when the daemon first failed to answer (zero when it answers)

	// CPU% of each service and member, from the processor time two
	// readings apart; absent where unknown (a first reading, a new
	// instance, a figure that went down because a member exited).
	cpu       map[string]float64
	memberCPU map[memberKey]float64
	prev      map[string]sample
	prevMem   map[memberKey]sample

	events []client.Event

	selected string // the selected service, by name, so that a refresh keeps it
	expanded bool   // the selected service's member tree is shown
	confirm  *confirmation
	busy     map[string]string // service → the verb under way
	message  string            // how the last action went
	failed   bool              // ... and whether it failed
	quitting bool
}

// New returns a Model that reads d; ctx bounds every call it makes.
func New(ctx context.Context, d Daemon, o Options) Model {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.ListTimeout <= 0 {
		o.ListTimeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Events <= 0 {
		o.Events = 100
	}
	return Model{
		d: d, ctx: ctx, o: o,
		cpu: map[string]float64{}, memberCPU: map[memberKey]float64{},
		prev: map[string]sample{}, prevMem: map[memberKey]sample{},
		busy: map[string]string{},
	}
}

// Init reads the services at once.
func (m Model) Init() tea.Cmd { return m.read1() }

// read1 is the command that takes one reading.
func (m Model) read1() tea.Cmd {
	d, ctx, o := m.d, m.ctx, m.o
	return func() tea.Msg {
		cctx, cancel := context.WithTimeout(ctx, o.ListTimeout)
		defer cancel()
		list, err := d.List(cctx, true)
		return Snapshot{At: o.Now(), Services: list, Err: err}
	}
}

// Update applies one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case Snapshot:
		m = m.applySnapshot(msg)
		if m.quitting {
			return m, nil
		}
		// The next reading is scheduled only once this one is in, so a
		// slow daemon is never asked twice at once.
		return m, tea.Tick(m.o.Interval, func(time.Time) tea.Msg { return refreshMsg{} })
	case refreshMsg:
		if m.quitting {
			return m, nil
		}
		return m, m.read1()
	case EventMsg:
		m.events = append(m.events, client.Event(msg))
		if len(m.events) > m.o.Events {
			m.events = append([]client.Event(nil), m.events[len(m.events)-m.o.Events:]...)
		}
	case ActionDone:
		delete(m.busy, msg.Service)
		m.failed = msg.Err != nil
		if msg.Err != nil {
			m.message = msg.Verb + " " + msg.Service + " failed: " + msg.Err.Error()
		} else {
			m.message = msg.Verb + " " + msg.Service + ": " + describe(msg.Result)
		}
	case tea.KeyPressMsg:
		return m.key(msg)
	}
	return m, nil
}

// applySnapshot takes a reading in, with the CPU% it gives.
func (m Model) applySnapshot(s Snapshot) Model {
	if s.Err != nil {
		// The last figures stay on screen, marked as old by the header.
		if m.down == nil {
			m.downAt = s.At
		}
		m.down = s.Err
		return m
	}
	m.down, m.downAt = nil, time.Time{}
	m.services, m.at, m.read = s.Services, s.At, true
	cpu, prev := map[string]float64{}, map[string]sample{}
	mcpu, mprev := map[memberKey]float64{}, map[memberKey]sample{}
	for _, sv := range s.Services {
		if sv.Instance == "" {
			continue
		}
		now := sample{key: sv.Instance, cpu: sv.CPUSeconds, at: s.At}
		if p, ok := m.prev[sv.Name]; ok {
			if pct, ok := rate(p, now); ok {
				cpu[sv.Name] = pct
			}
		}
		prev[sv.Name] = now
		for _, p := range sv.Members {
			k := memberKey{p.PID, p.StartTicks}
			now := sample{cpu: p.CPUSeconds, at: s.At}
			if q, ok := m.prevMem[k]; ok {
				if pct, ok := rate(q, now); ok {
					mcpu[k] = pct
				}
			}
			mprev[k] = now
		}
	}
	m.cpu, m.prev, m.memberCPU, m.prevMem = cpu, prev, mcpu, mprev
	m.keepSelection()
	return m
}

// rate is the CPU% between two samples of the same instance or process:
// processor seconds per second, ×100 (a tree on several cores can pass
// 100%, as in top). A figure that went down (a member exited and took its
// share along) gives no rate.
func rate(p, now sample) (float64, bool) {
	dt := now.at.Sub(p.at).Seconds()
	if p.key != now.key || dt <= 0 || now.cpu < p.cpu {
		return 0, false
	}
	return 100 * (now.cpu - p.cpu) / dt, true
}

// keepSelection keeps the selected service if it is still there, else
// selects the first one.
func (m *Model) keepSelection() {
	if m.index() >= 0 {
		return
	}
	m.selected = ""
	if len(m.services) > 0 {
		m.selected = m.services[0].Name
	}
}

// index is the selected service's row, -1 for none.
func (m Model) index() int {
	for i, s := range m.services {
		if s.Name == m.selected {
			return i
		}
	}
	return -1
}

func (m Model) key(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	key := k.String()
	if key == "ctrl+c" {
		m.quitting = true
		return m, tea.Quit
	}
	if c := m.confirm; c != nil {
		// Only "y" goes ahead: any other key, q included, is a no.
		m.confirm = nil
		if key != "y" && key != "Y" {
			m.message, m.failed = c.verb+" "+c.service+": cancelled", false
			return m, nil
		}
		m.busy[c.service] = c.verb
		m.message, m.failed = progressive(c.verb)+" "+c.service+"…", false
		return m, m.act(c.verb, c.service)
	}
	switch key {
	case "q":
		m.quitting = true
		return m, tea.Quit
	case "up", "k":
		m.move(-1)
	case "down", "j":
		m.move(1)
	case "home", "g":
		m.move(-len(m.services))
	case "end", "G":
		m.move(len(m.services))
	case "enter", "space":
		m.expanded = !m.expanded
	case "r", "s", "S":
		if m.selected == "" {
			return m, nil
		}
		verb := map[string]string{"r": "restart", "s": "stop", "S": "start"}[key]
		if v, ok := m.busy[m.selected]; ok {
			m.message, m.failed = m.selected+": "+progressive(v)+" already", false
			return m, nil
		}
		m.confirm = &confirmation{verb: verb, service: m.selected}
	}
	return m, nil
}

// move moves the selection by n rows, within the table.
func (m *Model) move(n int) {
	if len(m.services) == 0 {
		return
	}
	i := min(max(m.index()+n, 0), len(m.services)-1)
	m.selected = m.services[i].Name
}

// act is the command that carries out a confirmed action. A restart keeps
// the instance's profile and launch options; none waits for readiness, so
// the answer comes once the tree runs (or, for a stop, is verified empty)
// and the table shows the rest.
func (m Model) act(verb, name string) tea.Cmd {
	d, ctx := m.d, m.ctx
	return func() tea.Msg {
		var s client.Service
		var err error
		switch verb {
		case "restart":
			s, err = d.Restart(ctx, name, "", false)
		case "stop":
			s, err = d.Stop(ctx, name)
		case "start":
			s, err = d.Start(ctx, name, "", false)
		}
		return ActionDone{Verb: verb, Service: name, Result: s, Err: err}
	}
}

func progressive(verb string) string {
	switch verb {
	case "stop":
		return "stopping"
	case "start":
		return "starting"
	}
	return "restarting"
}
