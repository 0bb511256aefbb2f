package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Options configure a Server.
type Options struct {
	// API is the control API's handler (api.Handler): the routes the
	// dashboard forwards, without the /api prefix, are served by it.
	API http.Handler
	// Metrics serves /metrics; nil: no metrics on the dashboard.
	Metrics http.Handler
	// Token is required on every request; "" makes a random one (32
	// bytes, hex), new for each Server.
	Token string
	// Log gets the refused requests (debug) and the listener's errors.
	Log *slog.Logger
}

// Server is the dashboard. Its handler can be served by Serve or, in
// tests, by any server listening on 127.0.0.1.
type Server struct {
	opts    Options
	token   string
	sum     [sha256.Size]byte // of the token: compared instead of it, so every comparison has one length
	cookie  string            // the cookie's value: the sum in hex, always a valid cookie value, and not the token itself
	handler http.Handler
	cop     *http.CrossOriginProtection

	done chan struct{} // closed once Serve's server has stopped

	mu   sync.Mutex // guards port and url
	port string     // the listener's port once Serve listens
	url  string
}

//go:embed static
var static embed.FS

// New returns a dashboard forwarding to o.API.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: o, token: o.Token, cop: http.NewCrossOriginProtection(), done: make(chan struct{})}
	if s.token == "" {
		s.token = hex.EncodeToString(randomBytes(32))
	}
	s.sum = sha256.Sum256([]byte(s.token))
	s.cookie = hex.EncodeToString(s.sum[:])
	s.handler = s.guard(s.routes())
	return s
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24 and later)
	return b
}

// Handler returns the dashboard's handler, with every check of the
// package's documentation.
func (s *Server) Handler() http.Handler { return s.handler }

// URL returns the address to open, with the token: "" until Serve
// listens.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Serve listens on addr, which must be 127.0.0.1:PORT (PORT 0: any free
// port), and serves the dashboard until ctx ends; it returns once it
// listens, with the URL to open. When ctx ends, the open streams end and
// the listener closes (then Done is closed). A Server serves once.
func (s *Server) Serve(ctx context.Context, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("dashboard: listen address %q: %v (want 127.0.0.1:PORT)", addr, err)
	}
	if host != "127.0.0.1" {
		// Not even localhost, whose address is whatever the resolver says
		// (::1, or another machine's in a doctored hosts file).
		return "", fmt.Errorf("dashboard: refusing to listen on %q: the dashboard can start and stop services, so it listens on 127.0.0.1 only (use 127.0.0.1:%s)", addr, port)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "", fmt.Errorf("dashboard: listen address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	s.mu.Lock()
	if s.url != "" {
		s.mu.Unlock()
		return "", fmt.Errorf("dashboard: already serving on %s", s.redactedURL())
	}
	s.mu.Unlock()
	ln, err := net.Listen("tcp4", net.JoinHostPort(host, port))
	if err != nil {
		return "", fmt.Errorf("dashboard: %w", err)
	}
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	s.mu.Lock()
	s.port = port
	s.url = "http://127.0.0.1:" + port + "/?token=" + url.QueryEscape(s.token)
	u := s.url
	s.mu.Unlock()
	srv := &http.Server{
		Handler: s.handler,
		// No write timeout: logs and events are followed for as long as
		// the page is open.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.opts.Log.Handler(), slog.LevelDebug),
		// Requests live in ctx: its end ends the followers, which would
		// otherwise hold Shutdown until its deadline.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Log.Error("dashboard: serving stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	go func() {
		defer close(s.done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()
	return u, nil
}

// Done is closed once the server Serve started has stopped (its context
// ended, its listener is closed): a daemon that waits for it exits with
// no request of the dashboard's under way. Never closed without Serve.
func (s *Server) Done() <-chan struct{} { return s.done }

// redactedURL is the URL without its token, for messages. s.mu is held.
func (s *Server) redactedURL() string { return "http://127.0.0.1:" + s.port + "/" }
