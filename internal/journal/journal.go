package journal

import (
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
}

// Bus keeps the last events and fans new ones out to subscribers.
type Bus struct {
	mu   sync.Mutex // guards every field below
	ring []Event
	max  int
	seq  uint64
	subs map[int]chan Event
	next int
	now  func() time.Time
}

// NewBus keeps the last max events.
func NewBus(max int, now func() time.Time) *Bus {
	if now == nil {
		now = time.Now
	}
	return &Bus{max: max, subs: map[int]chan Event{}, now: now}
}

// Emit records e, stamping its sequence number and time.
func (b *Bus) Emit(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e.Seq = b.seq
	if e.Time.IsZero() {
		e.Time = b.now()
	}
	b.ring = append(b.ring, e)
	if len(b.ring) > b.max {
		b.ring[0] = Event{}
		b.ring = b.ring[1:]
	}
	for _, ch := range b.subs {
		select {
		case ch <- e:
		default:
		}
	}
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

// Subscribe returns the last n events and a channel of the following ones.
func (b *Bus) Subscribe(n int) ([]Event, <-chan Event, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < 0 || n > len(b.ring) {
		n = len(b.ring)
	}
	past := append([]Event(nil), b.ring[len(b.ring)-n:]...)
	ch := make(chan Event, 256)
	id := b.next
	b.next++
	b.subs[id] = ch
	return past, ch, func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	}
}
