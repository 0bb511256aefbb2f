package journal

import (
	"sort"
	"sync"
	"time"
)

// Kind names what happened.
type Kind string

const (
	Spawn    Kind = "spawn"
	Ready    Kind = "ready"
	Exit     Kind = "exit"
	Stopped  Kind = "stopped"
	Restart  Kind = "restart"
	Failed   Kind = "failed"
	Health   Kind = "health"
	External Kind = "external"
	State    Kind = "state"
	Refused  Kind = "refused" // a start refused (port held, bad profile, ...)
	Daemon   Kind = "daemon"
	Signal   Kind = "signal"    // the stop signal went to the members of a tree
	Kill     Kind = "kill"      // members still alive after the grace period were killed
	Runaway  Kind = "runaway"   // a limit was breached; figures and action in the fields
	Leak     Kind = "leak"      // a process of ours outside any live container (the alarm)
	Bundle   Kind = "bundle"    // a diagnostic bundle was written
	Reaped   Kind = "reap"      // leftovers of an earlier run were stopped
	Reused   Kind = "reused"    // a journaled pid now belongs to another process; skipped
	Torn     Kind = "torn"      // damaged journal lines were skipped
	NotReady Kind = "not-ready" // the readiness probe gave up (its target and last error)
	Main     Kind = "main"      // the main process of an instance is known (pidfile, launcher's successor)
	Handover Kind = "handover"  // the main process exited 0 and a successor took over (old and new pid in the fields)
)

// Event is one entry.
type Event struct {
	Seq      uint64            `json:"seq"`
	Time     time.Time         `json:"time"`
	Kind     Kind              `json:"kind"`
	Service  string            `json:"service,omitempty"`
	Instance string            `json:"instance,omitempty"`
	PID      int               `json:"pid,omitempty"`
	Message  string            `json:"message"`
	Fields   map[string]string `json:"fields,omitempty"`
	// Spawn records also carry what identifies the instance's processes
	// across a crash of corral and PID reuse.
	Cgroup  string   `json:"cgroup,omitempty"`
	Start   uint64   `json:"start,omitempty"`
	Boot    string   `json:"boot,omitempty"`
	Cmdline []string `json:"cmdline,omitempty"`
}

// Bus keeps the last events, fans new ones out to subscribers and, with a
// File, appends them to the journal on disk.
type Bus struct {
	file *File      // nil: memory only; set before use
	mu   sync.Mutex // guards every field below
	ring []Event
	max  int
	seq  uint64
	subs map[int]chan Event
	next int
	now  func() time.Time
	taps []func(Event)
}

// NewBus keeps the last max events.
func NewBus(max int, now func() time.Time) *Bus {
	if now == nil {
		now = time.Now
	}
	return &Bus{max: max, subs: map[int]chan Event{}, now: now}
}

// Preload puts past events (from the journal on disk) into the ring, so the
// history survives a restart of the daemon; numbering continues after them.
func (b *Bus) Preload(past []Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(past) > b.max {
		past = past[len(past)-b.max:]
	}
	b.ring = append(append([]Event(nil), past...), b.ring...)
	for _, e := range past {
		b.seq = max(b.seq, e.Seq)
	}
}

// SetFile makes the bus append every event to f. Call before any Emit.
func (b *Bus) SetFile(f *File) { b.file = f }

// File returns the file SetFile gave (nil: none).
func (b *Bus) File() *File { return b.file }

// Emit records e, stamping its sequence number and time. A failed write to
// the journal file is not the caller's problem here: only EmitSync, for
// spawns, may refuse.
func (b *Bus) Emit(e Event) { b.emit(e, false) }

// EmitSync records e and returns only once it is on disk; an error means it
// is not, and the caller must not go ahead (nothing runs unjournaled).
func (b *Bus) EmitSync(e Event) error { return b.emit(e, true) }

func (b *Bus) emit(e Event, sync bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = b.now()
	}
	e.Seq = b.seq + 1
	if b.file != nil {
		if err := b.file.Append(e, sync); err != nil && sync {
			return err
		}
	}
	b.seq = e.Seq
	b.ring = append(b.ring, e)
	if len(b.ring) > b.max {
		b.ring[0] = Event{}
		b.ring = b.ring[1:]
	}
	for _, tap := range b.taps {
		tap(e)
	}
	for id, ch := range b.subs {
		select {
		case ch <- e:
		default:
			// A subscriber this far behind would miss events without
			// knowing: its channel is closed instead, and it resumes from
			// the ring with after=SEQ (the API's stream ends; the clients
			// reconnect).
			close(ch)
			delete(b.subs, id)
		}
	}
	return nil
}

// Tap calls fn with every event emitted from now on, in order, before the
// subscribers get it. Unlike a subscription it never misses one (counters
// are built on it), so fn runs under the bus's lock: it must be quick, must
// not block and must not emit.
func (b *Bus) Tap(fn func(Event)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.taps = append(b.taps, fn)
}

// Recent returns the last n events (all kept when n <= 0).
func (b *Bus) Recent(n int) []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n <= 0 || n > len(b.ring) {
		n = len(b.ring)
	}
	return append([]Event(nil), b.ring[len(b.ring)-n:]...)
}

// Subscribe returns the last n events (all kept when n < 0) and a channel
// of the following ones.
func (b *Bus) Subscribe(n int) ([]Event, <-chan Event, func()) {
	past, _, ch, cancel := b.SubscribeAfter(0, n)
	return past, ch, cancel
}

// Window is what a subscription found kept when it began.
type Window struct {
	// First is the number of the oldest event kept, or Last+1 when none
	// is: the lowest number a reader that resumes can still get.
	First uint64
	// Last is the number of the newest event (0: none yet).
	Last uint64
}

// SubscribeAfter is Subscribe for a reader that resumes: past holds the
// kept events numbered above after (only the last n of those when n >= 0),
// then the channel carries the following ones, with no gap between the
// two. An after above Window.Last comes from another numbering (a journal
// that was lost) and counts as 0. The ring is ordered by number, so the
// start is found by binary search and only what is sent is copied.
func (b *Bus) SubscribeAfter(after uint64, n int) ([]Event, Window, <-chan Event, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := Window{First: b.seq + 1, Last: b.seq}
	if len(b.ring) > 0 {
		w.First = b.ring[0].Seq
	}
	if after > b.seq {
		after = 0
	}
	kept := b.ring[sort.Search(len(b.ring), func(i int) bool { return b.ring[i].Seq > after }):]
	if n >= 0 && n < len(kept) {
		kept = kept[len(kept)-n:]
	}
	past := append([]Event(nil), kept...)
	ch := make(chan Event, 256)
	id := b.next
	b.next++
	b.subs[id] = ch
	return past, w, ch, func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	}
}

// The channel of a subscription is closed when the subscriber fell behind
// by more than its buffer (256 events): it has to subscribe again after the
// last event it got.
