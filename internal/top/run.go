package top

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/corral-sh/corral/client"
)

// recentEvents is how many past events a view starts with.
const recentEvents = 20

// Terminal is where Run draws and what it reads keys from; its zero
// value is the process's terminal.
type Terminal struct {
	// In gives the keys; nil: standard input, or the controlling terminal
	// (/dev/tty) when standard input is not one.
	In io.Reader
	// Out is drawn on; nil: standard output.
	Out io.Writer
	// Env is the environment Bubble Tea reads TERM, NO_COLOR and the like
	// from; nil: the process's.
	Env []string
	// Width and Height are the screen's size when Out is not a terminal
	// that says (a test's pipe); 0: the terminal's.
	Width, Height int
}

// Run shows the live view on t until q or ctrl+c, or until ctx ends. The
// event stream reconnects by itself (after the last event it gave, so a
// daemon that restarts continues where it was); readings that fail show
// as "daemon not answering" and go on every interval. Neither ends the
// view: only a person does.
func Run(ctx context.Context, d Daemon, t Terminal, o Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := []tea.ProgramOption{tea.WithContext(ctx)}
	if t.In != nil {
		opts = append(opts, tea.WithInput(t.In))
	}
	if t.Out != nil {
		opts = append(opts, tea.WithOutput(t.Out))
	}
	if t.Env != nil {
		opts = append(opts, tea.WithEnvironment(t.Env))
	}
	if t.Width > 0 && t.Height > 0 {
		opts = append(opts, tea.WithWindowSize(t.Width, t.Height))
	}
	p := tea.NewProgram(New(ctx, d, o), opts...)
	var wg sync.WaitGroup
	wg.Go(func() {
		// Send blocks until the program runs, and drops what comes after
		// it ended; the stream ends with ctx.
		d.EventsWith(ctx, client.StreamOptions{N: recentEvents, Follow: true, Reconnect: true, Heartbeat: 5 * time.Second}, func(e client.Event) error {
			p.Send(EventMsg(e))
			return nil
		})
	})
	_, err := p.Run()
	cancel()
	wg.Wait()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil || errors.Is(err, tea.ErrInterrupted) {
		return nil // ended by a signal: as much a quit as q
	}
	if err != nil {
		return fmt.Errorf("top: %w", err)
	}
	return nil
}

// Once writes one snapshot to w, width columns wide (0: lines whole): the
// table and the last events. The services are read twice, o.Interval
// apart, so that CPU% means what it means in the live view (the processor
// time used between two readings). A daemon that does not answer is an
// error, as for corral status.
func Once(ctx context.Context, w io.Writer, d Daemon, width int, o Options) error {
	s, err := Sample(ctx, d, o)
	if err != nil {
		return err
	}
	s.width = width
	_, err = io.WriteString(w, s.Plain()+"\n")
	return err
}

// Sample is the Model of Once: two readings o.Interval apart and the last
// recentEvents events.
func Sample(ctx context.Context, d Daemon, o Options) (Model, error) {
	m := New(ctx, d, o)
	for i := range 2 {
		if i > 0 {
			select {
			case <-ctx.Done():
				return m, ctx.Err()
			case <-time.After(m.o.Interval):
			}
		}
		snap := m.read1()().(Snapshot)
		if snap.Err != nil {
			return m, snap.Err
		}
		m = m.applySnapshot(snap)
	}
	err := d.EventsWith(ctx, client.StreamOptions{N: recentEvents}, func(e client.Event) error {
		m.events = append(m.events, e)
		return nil
	})
	return m, err
}

// Services is the last reading.
func (m Model) Services() []client.Service { return m.services }

// CPU is the CPU% of each running service that two readings gave.
func (m Model) CPU() map[string]float64 { return m.cpu }

// Events are the kept events, oldest first.
func (m Model) Events() []client.Event { return m.events }

// At is when the last reading was taken.
func (m Model) At() time.Time { return m.at }
