package top

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/render"
)

// help is the footer's list of keys, how to quit first: on a narrow
// screen the line is cut from its end.
const help = "q quit · ↑/↓ select · enter tree · r restart · s stop · S start"

// View is the screen: the alternate screen, so that quitting gives the
// terminal back as it was.
func (m Model) View() tea.View {
	if m.quitting {
		return tea.NewView("")
	}
	v := tea.NewView(m.Render())
	v.AltScreen = true
	v.WindowTitle = "corral top"
	return v
}

// Render is the screen as text: every line fitted to the width (0: whole)
// and, with a height, as many lines as it has, the keys on the last one.
func (m Model) Render() string { return m.render(false) }

// Plain is one snapshot for a pipe or a file: no selection, no keys, no
// bound on the height, no colour.
func (m Model) Plain() string {
	m.o.Color = false
	return m.render(true)
}

// style wraps s in an SGR attribute and the code that ends only that
// attribute (never a full reset), so that a state's colour inside the
// selected row's reverse video leaves the reverse on.
func (m Model) style(on, off, s string) string {
	if !m.o.Color || s == "" {
		return s
	}
	return "\x1b[" + on + "m" + s + "\x1b[" + off + "m"
}

func (m Model) bold(s string) string  { return m.style("1", "22", s) }
func (m Model) faint(s string) string { return m.style("2", "22", s) }

// stateColor is the foreground colour (SGR) of a state: green when ready,
// yellow while it changes, magenta waiting to restart, red when it needs a
// person, cyan for a server corral did not start; stopped and done faint.
func stateColor(state string) string {
	switch state {
	case "ready":
		return "32"
	case "checking", "starting", "handover", "stopping", "restarting", "ending":
		return "33"
	case "backoff":
		return "35"
	case "unhealthy", "failed", "stop-failed", "frozen":
		return "31"
	case "external":
		return "36"
	}
	return ""
}

func (m Model) colorState(state, padded string) string {
	switch c := stateColor(state); {
	case c != "":
		return m.style(c, "39", padded)
	case state == "stopped" || state == "done":
		return m.faint(padded)
	}
	return padded
}

func (m Model) render(plain bool) string {
	var head []string
	switch {
	case m.down != nil:
		h := fmt.Sprintf("corral top: daemon not answering since %s, retrying every %v", clock(m.downAt), m.o.Interval)
		if m.read {
			h += fmt.Sprintf(" (figures of %s)", clock(m.at))
		}
		head = append(head, m.style("1;31", "22;39", h), m.faint(clean(m.down.Error())))
	case !m.read:
		head = append(head, "corral top: connecting to the daemon…")
	default:
		running := 0
		for _, s := range m.services {
			if s.PID != 0 {
				running++
			}
		}
		h := fmt.Sprintf("corral top · %s, %d running · %s", plural(len(m.services), "service"), running, clock(m.at))
		if !plain {
			h += fmt.Sprintf(" · every %v", m.o.Interval)
		}
		head = append(head, m.bold(h))
	}

	table := m.table(plain)
	tree := m.tree()
	events := m.eventLines()

	var footer string
	if !plain {
		footer = m.footer()
	}

	// What fits: the header, the table's title and footer always; then the
	// table's rows (at least one, leaving six lines below when there are
	// many), the tree, and the newest events.
	rows := table[1:]
	if m.height > 0 && !plain {
		free := m.height - len(head) - 2
		n := min(len(rows), max(1, free-6))
		// Scroll so that the selected row stays in view.
		first := max(0, min(m.index()-n+1, len(rows)-n))
		rows = rows[first : first+n]
		free -= n
		if len(tree) > 0 {
			// An expanded tree was asked for: it comes before the events.
			// A blank line, the title, the columns' titles and a member at
			// least; the members that do not fit are counted.
			want := len(tree) + 1
			treeN := min(want, max(free, 0))
			switch {
			case treeN < min(want, 4):
				tree = nil
			case treeN < want:
				cut := len(tree) - (treeN - 2)
				tree = append(tree[:treeN-2:treeN-2], "  … "+plural(cut, "more process"))
			}
			if len(tree) > 0 {
				free -= len(tree) + 1
			}
		}
		if len(events) > 0 {
			evN := free - 2 // a blank line and the title
			if evN < 1 {
				events = nil
			} else {
				events = events[max(0, len(events)-evN):]
			}
		}
	}

	lines := append(head, table[0])
	lines = append(lines, rows...)
	if len(tree) > 0 {
		lines = append(lines, "")
		lines = append(lines, tree...)
	}
	if len(events) > 0 {
		lines = append(lines, "", m.bold("EVENTS"))
		lines = append(lines, events...)
	}
	if !plain {
		if m.height > 0 {
			if len(lines) > m.height-1 {
				lines = lines[:max(m.height-1, 0)]
			}
			for len(lines) < m.height-1 {
				lines = append(lines, "")
			}
		}
		lines = append(lines, footer)
	}
	if m.width > 0 {
		for i, l := range lines {
			lines[i] = ansi.Truncate(l, m.width, "…")
		}
	}
	return strings.Join(lines, "\n")
}

// column is one column of a table; numbers are aligned right.
type column struct {
	title string
	right bool
}

// layout pads cells into columns two spaces apart; the last column is not
// padded (it is cut by the width instead).
func layout(cols []column, cells [][]string) [][]string {
	w := make([]int, len(cols))
	for i, c := range cols {
		w[i] = ansi.StringWidth(c.title)
	}
	for _, r := range cells {
		for i, c := range r {
			w[i] = max(w[i], ansi.StringWidth(c))
		}
	}
	out := make([][]string, len(cells))
	for j, r := range cells {
		out[j] = make([]string, len(r))
		for i, c := range r {
			pad := strings.Repeat(" ", w[i]-ansi.StringWidth(c))
			switch {
			case i == len(r)-1 && !cols[i].right:
				out[j][i] = c
			case cols[i].right:
				out[j][i] = pad + c
			default:
				out[j][i] = c + pad
			}
		}
	}
	return out
}

// table is the services' table: its title line, then a line per service.
func (m Model) table(plain bool) []string {
	gpu := false
	for _, s := range m.services {
		gpu = gpu || s.GPUMemory != nil
	}
	cols := []column{{"SERVICE", false}, {"STATE", false}, {"PID", true}, {"PROCS", true}, {"RSS", true}, {"CPU%", true}}
	if gpu {
		cols = append(cols, column{"GPU", true})
	}
	cols = append(cols, column{"UPTIME", true}, column{"RESTARTS", true}, column{"REASON", false})
	cells := [][]string{make([]string, len(cols))}
	for i, c := range cols {
		cells[0][i] = c.title
	}
	for _, s := range m.services {
		pid, procs, rss, cpu, up := "-", "-", "-", "-", "-"
		if s.PID != 0 {
			pid = fmt.Sprint(s.PID)
			if !s.StartedAt.IsZero() {
				up = render.Duration(m.at.Sub(s.StartedAt))
			}
		}
		if s.Instance != "" {
			procs, rss = fmt.Sprint(s.MemberCount), size(s.RSS)
			if p, ok := m.cpu[s.Name]; ok && !m.o.NoCPU {
				cpu = percent(p)
			}
		}
		reason := ""
		if s.Reason != s.State {
			reason = clean(s.Reason)
		}
		if s.Frozen {
			reason = strings.TrimSpace("FROZEN " + reason)
		}
		if v, ok := m.busy[s.Name]; ok && !plain {
			reason = strings.TrimSpace(progressive(v) + "… " + reason)
		}
		name := clean(s.Name)
		if m.width > 0 {
			// A long name would push every figure off a narrow screen.
			name = ansi.Truncate(name, max(10, m.width/4), "…")
		}
		row := []string{name, s.State, pid, procs, rss, cpu}
		if gpu {
			g := "-"
			if s.GPUMemory != nil {
				g = size(*s.GPUMemory)
			}
			row = append(row, g)
		}
		row = append(row, up, fmt.Sprint(s.Restarts), reason)
		cells = append(cells, row)
	}
	laid := layout(cols, cells)
	sel := m.index()
	out := make([]string, len(laid))
	for j, r := range laid {
		if j > 0 {
			r[1] = m.colorState(m.services[j-1].State, r[1])
		}
		line := strings.TrimRight(strings.Join(r, "  "), " ")
		switch {
		case plain:
		case j == 0:
			line = "  " + line
		case j-1 == sel:
			line = m.style("7", "27", "> "+line)
		default:
			line = "  " + line
		}
		if j == 0 {
			line = m.bold(line)
		}
		out[j] = line
	}
	return out
}

// tree is the selected service's member tree, when it is expanded: a
// title, the columns' titles, a line per member.
func (m Model) tree() []string {
	i := m.index()
	if !m.expanded || i < 0 {
		return nil
	}
	s := m.services[i]
	if len(s.Members) == 0 {
		return []string{m.bold(fmt.Sprintf("%s: %s, no processes", clean(s.Name), s.State))}
	}
	title := fmt.Sprintf("%s: %s, %s", clean(s.Name), plural(len(s.Members), "process"), size(s.RSS))
	if p, ok := m.cpu[s.Name]; ok && !m.o.NoCPU {
		title += ", " + percent(p) + " CPU"
	}
	if s.GPUMemory != nil {
		title += ", " + size(*s.GPUMemory) + " GPU"
	}
	if s.Instance != "" {
		title += ", instance " + s.Instance
	}
	if s.Mechanism != "" {
		title += " (" + s.Mechanism + ")"
	}
	procs := make([]render.Proc, len(s.Members))
	byPID := map[int]client.Process{}
	gpu := false
	for i, p := range s.Members {
		procs[i] = render.Proc{PID: p.PID, PPID: p.PPID, PGID: p.PGID, Cmdline: p.Cmdline, RSS: p.RSS}
		byPID[p.PID] = p
		gpu = gpu || p.GPUMemory != nil
	}
	// The leader's pid is its process group: a root outside it was
	// re-parented (as status marks it).
	leader := s.Leader
	if leader == 0 {
		leader = s.PID
	}
	cols := []column{{"RSS", true}, {"CPU%", true}}
	if gpu {
		cols = append(cols, column{"GPU", true})
	}
	cols = append(cols, column{"PID  COMMAND", false})
	cells := [][]string{make([]string, len(cols))}
	for i, c := range cols {
		cells[0][i] = c.title
	}
	for _, r := range render.TreeRows(procs, leader) {
		p := byPID[r.PID]
		cpu := "-"
		if v, ok := m.memberCPU[memberKey{p.PID, p.StartTicks}]; ok && !m.o.NoCPU {
			cpu = percent(v)
		}
		row := []string{size(p.RSS), cpu}
		if gpu {
			g := "-"
			if p.GPUMemory != nil {
				g = size(*p.GPUMemory)
			}
			row = append(row, g)
		}
		cells = append(cells, append(row, clean(r.Left)+r.Note))
	}
	out := []string{m.bold(title)}
	for j, r := range layout(cols, cells) {
		line := "  " + strings.Join(r, "  ")
		if j == 0 {
			line = m.faint(line)
		}
		out = append(out, line)
	}
	return out
}

// eventLines are the kept events, oldest first: time, service, kind,
// message.
func (m Model) eventLines() []string {
	if len(m.events) == 0 {
		return nil
	}
	cells := make([][]string, len(m.events))
	for i, e := range m.events {
		svc := e.Service
		if svc == "" {
			svc = "-"
		}
		cells[i] = []string{clock(e.Time), clean(svc), clean(e.Kind), clean(e.Message)}
	}
	out := make([]string, len(cells))
	for i, r := range layout([]column{{"", false}, {"", false}, {"", false}, {"", false}}, cells) {
		out[i] = "  " + strings.Join(r, "  ")
	}
	return out
}

func (m Model) footer() string {
	if c := m.confirm; c != nil {
		return m.style("1;7", "22;27", fmt.Sprintf("%s %s? y: yes, any other key: no", c.verb, c.service))
	}
	if m.message == "" {
		return m.faint(help)
	}
	msg := clean(m.message)
	if m.failed {
		msg = m.style("31", "39", msg)
	}
	return msg + "  │  " + m.faint(help)
}

// describe says in a few words where an action left a service.
func describe(s client.Service) string {
	if s.PID != 0 {
		return fmt.Sprintf("%s (pid %d, %d processes)", s.State, s.PID, s.MemberCount)
	}
	return s.State
}

// clock is a time of day as the daemon gave it (its zone).
func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("15:04:05")
}

// plural is n and noun, with an English plural for n ≠ 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "s") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func percent(p float64) string { return fmt.Sprintf("%.1f%%", p) }

// size is render.Bytes, in GiB from 1 GiB: GPU memory and large models'
// resident memory are tens of GiB.
func size(b int64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	}
	return render.Bytes(b)
}

// clean makes text from a supervised program (its command line, its
// events' messages) safe to put on a terminal: a control character could
// move the cursor or start an escape sequence, so each becomes a space.
func clean(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
