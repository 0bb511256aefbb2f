package api

import (
	"encoding/json"
	"net/http"
	"sync"
)

// serverEnds tells follow streams that the server they are served by is
// shutting down (http.Server.Shutdown, which the daemon calls once every
// service is stopped). A follow then ends its answer cleanly at once: a
// follower sees the end of the stream (the daemon went away) instead of
// holding the shutdown up until its deadline and being cut off mid-answer.
// Any server that serves the handler (the socket's, the dashboard's) is
// covered, through the request's http.ServerContextKey.
type serverEnds struct {
	mu   sync.Mutex
	ends map[*http.Server]chan struct{}
}

// of returns a channel closed when r's server begins shutting down (nil,
// which never fires, for a request not served by an http.Server).
func (e *serverEnds) of(r *http.Request) <-chan struct{} {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ch, ok := e.ends[srv]
	if !ok {
		if e.ends == nil {
			e.ends = map[*http.Server]chan struct{}{}
		}
		ch = make(chan struct{})
		e.ends[srv] = ch
		srv.RegisterOnShutdown(func() {
			close(ch)
			e.mu.Lock()
			delete(e.ends, srv)
			e.mu.Unlock()
		})
	}
	return ch
}

// encodeBurst encodes v and what next already holds (a bounded number), so
// that a burst of items is flushed once rather than item by item. A closed
// next is left for the caller's next receive to see.
func encodeBurst[T any](enc *json.Encoder, v T, next <-chan T) error {
	if err := enc.Encode(noNull(v)); err != nil {
		return err
	}
	for range 255 {
		select {
		case v, ok := <-next:
			if !ok {
				return nil
			}
			if err := enc.Encode(noNull(v)); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}
