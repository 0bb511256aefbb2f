package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/corral-sh/corral/internal/ipc"
)

// Client talks to one daemon. It believes only a daemon of the expected
// user (ipc.ExpectedServer: its own, or for root the state directory's
// owner), checked on every connection before a request is written.
type Client struct {
	hc          *http.Client
	socket      string
	dir         string // the state directory; "" when unknown
	dialTimeout time.Duration
	peerPID     atomic.Int64 // the daemon's pid, from the last connection's credentials
}

// Options tune a Client; zero fields take New's defaults.
type Options struct {
	// DialTimeout bounds connecting to the socket and checking who serves
	// it; default 5s. A request's context bounds it too.
	DialTimeout time.Duration
	// IdleTimeout closes a kept-alive connection idle this long; default
	// ipc.ClientIdleTimeout (30s), shorter than the daemon's, so that no
	// request goes out on a connection the daemon is closing.
	IdleTimeout time.Duration
	// StateDir is the state directory the socket belongs to, where the
	// daemon's lock tells a daemon without a socket from none. Default:
	// the socket's directory; on Windows a pipe's name does not say, so
	// without it those errors cannot name the lock's holder.
	StateDir string
}

// New returns a client for the daemon listening on socket (ipc.Path of
// its state directory), with the default Options.
func New(socket string) *Client { return NewWithOptions(socket, Options{}) }

// NewWithOptions is New with o.
func NewWithOptions(socket string, o Options) *Client {
	if o.DialTimeout <= 0 {
		o.DialTimeout = defaultDialTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = ipc.ClientIdleTimeout
	}
	if o.StateDir == "" {
		o.StateDir = ipc.StateDirOf(socket)
	}
	c := &Client{socket: socket, dir: o.StateDir, dialTimeout: o.DialTimeout}
	tr := &http.Transport{
		// A unix socket, or a named pipe on Windows; checked in dial.
		DialContext:     c.dial,
		MaxIdleConns:    4,
		IdleConnTimeout: o.IdleTimeout,
	}
	c.hc = &http.Client{Transport: tr}
	return c
}

// CloseIdleConnections closes the connections kept alive for later calls.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// The liveness check of a call with no deadline: every livenessEvery the
// daemon is asked GET /v1/daemon; no answer within livenessTimeout (it is
// stopped, or hung) ends the call with ErrNotAnswering. A daemon that is
// merely slow to finish the call (a long stop) still answers it. Variables
// so that tests need not wait.
var (
	livenessEvery   = 5 * time.Second
	livenessTimeout = 10 * time.Second
)

func (c *Client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	return c.call(ctx, method, path, q, func(resp *http.Response) error {
		if out == nil {
			_, err := io.Copy(io.Discard, resp.Body)
			return err
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("client: decode %s %s: %w", method, path, err)
		}
		return nil
	})
}

// call sends one request and hands a 2xx answer to read. Every call is
// bounded: by ctx's deadline, or, without one, by the liveness check.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, read func(*http.Response) error) error {
	what := method + " " + path
	began := time.Now()
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if _, ok := ctx.Deadline(); !ok {
		go c.watch(cctx, cancel, what, livenessEvery, livenessTimeout)
	}
	u := "http://corral" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(cctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.failed(ctx, cctx, what, began, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
		}
		return e
	}
	if err := read(resp); err != nil {
		if cctx.Err() != nil {
			return c.failed(ctx, cctx, what, began, err)
		}
		return err
	}
	return nil
}

// failed says why a call failed: the socket (dial's errors as they are),
// the liveness check, or ctx.
func (c *Client) failed(ctx, cctx context.Context, what string, began time.Time, err error) error {
	var ce *connError
	if errors.As(err, &ce) {
		return ce
	}
	if cause := context.Cause(cctx); errors.Is(cause, ErrNotAnswering) {
		return cause
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		dl, _ := ctx.Deadline()
		return fmt.Errorf("client: %s: the daemon%s on %s did not answer within %v: it may be stopped or overloaded: %w",
			what, c.daemonPID(), c.socket, roundBound(dl.Sub(began)), context.DeadlineExceeded)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("client: %s: %w", what, ctx.Err())
	}
	return fmt.Errorf("client: %s: %w", what, err)
}

// roundBound rounds a bound for a message: the call began a little after
// its context's clock started.
func roundBound(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}

func (c *Client) daemonPID() string {
	if pid := c.peerPID.Load(); pid > 0 {
		return fmt.Sprintf(" (pid %d)", pid)
	}
	return ""
}

// watch runs the liveness check of a call until ctx ends, and ends the
// call with ErrNotAnswering when the daemon does not answer it. A failure
// to connect is left alone: a daemon that exited also closed the call's
// connection, which ends the call by itself.
func (c *Client) watch(ctx context.Context, cancel context.CancelCauseFunc, what string, every, timeout time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, pcancel := context.WithTimeout(ctx, timeout)
		_, err := c.Daemon(pctx)
		timedOut := errors.Is(pctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		pcancel()
		if err != nil && timedOut {
			stopped := "stopped (SIGSTOP)"
			if pid := c.peerPID.Load(); pid > 0 {
				stopped = fmt.Sprintf("stopped (SIGSTOP: kill -CONT %d)", pid)
			}
			if runtime.GOOS == "windows" {
				stopped = "suspended"
			}
			cancel(&connError{kind: ErrNotAnswering, cause: err, msg: fmt.Sprintf(
				"client: %s: the daemon%s on %s stopped answering: a liveness check got no answer within %v while this request waited; it may be %s or hung, and whether the request took effect is unknown",
				what, c.daemonPID(), c.socket, timeout, stopped)})
			return
		}
	}
}

// Daemon describes the daemon; it is also the cheapest liveness check.
func (c *Client) Daemon(ctx context.Context) (Daemon, error) {
	var d Daemon
	return d, c.do(ctx, "GET", "/v1/daemon", nil, &d)
}

// List returns every service; members adds each service's member tree.
func (c *Client) List(ctx context.Context, members bool) ([]Service, error) {
	var out []Service
	q := url.Values{}
	if members {
		q.Set("members", "1")
	}
	return out, c.do(ctx, "GET", "/v1/services", q, &out)
}

// Inspect returns one service with its members.
func (c *Client) Inspect(ctx context.Context, name string) (Service, error) {
	var s Service
	return s, c.do(ctx, "GET", "/v1/services/"+url.PathEscape(name), nil, &s)
}

func (c *Client) action(ctx context.Context, name, verb string, q url.Values) (Service, error) {
	var s Service
	return s, c.do(ctx, "POST", "/v1/services/"+url.PathEscape(name)+"/"+verb, q, &s)
}

// StartOptions qualify a start or an ensure.
type StartOptions struct {
	// Profile is a named argument set from the service's profiles; ""
	// accepts the running instance's, or starts the plain command.
	Profile string
	// Wait makes a start return once the service is ready, not once it
	// runs. An ensure always waits.
	Wait bool
	// RestartIfDifferent restarts a running instance of another profile
	// instead of failing with CodeProfileMismatch.
	RestartIfDifferent bool
	// Timeout bounds the whole call, connecting included: the client gives
	// up at Timeout (or at ctx's deadline, if sooner), and the daemon is
	// told a little less, so that its CodeTimeout answer, which says what
	// the service was waiting for, arrives first. 0: only ctx bounds it.
	Timeout time.Duration
}

// bound applies o.Timeout to ctx and returns the query that tells the
// daemon its share of what is left.
func (o StartOptions) bound(ctx context.Context) (context.Context, context.CancelFunc, url.Values) {
	cancel := context.CancelFunc(func() {})
	if o.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
	}
	q := actionQuery(o.Profile, o.Wait)
	if o.RestartIfDifferent {
		q.Set("restart_if_different", "1")
	}
	if dl, ok := ctx.Deadline(); ok && o.Timeout > 0 {
		q.Set("timeout", daemonShare(time.Until(dl)).Round(time.Millisecond).String())
	}
	return ctx, cancel, q
}

// daemonShare is the part of left the daemon may wait: its answer needs
// time to come back (up to a second, a tenth of short bounds).
func daemonShare(left time.Duration) time.Duration {
	return max(left-min(time.Second, left/10), time.Millisecond)
}

// Start starts a service; wait makes it return once ready.
func (c *Client) Start(ctx context.Context, name, profile string, wait bool) (Service, error) {
	return c.StartWith(ctx, name, StartOptions{Profile: profile, Wait: wait})
}

// StartWith starts a service with every option. A service that runs is
// left as it is, unless o asks for another profile.
func (c *Client) StartWith(ctx context.Context, name string, o StartOptions) (Service, error) {
	ctx, cancel, q := o.bound(ctx)
	defer cancel()
	return c.action(ctx, name, "start", q)
}

// Restart stops a service completely, then starts it.
func (c *Client) Restart(ctx context.Context, name, profile string, wait bool) (Service, error) {
	return c.action(ctx, name, "restart", actionQuery(profile, wait))
}

// Stop stops a service; it returns once its tree is verified empty.
func (c *Client) Stop(ctx context.Context, name string) (Service, error) {
	return c.action(ctx, name, "stop", nil)
}

// Ensure makes a service ready, starting it if needed, and is idempotent:
// concurrent calls lead to one instance. timeout bounds the call
// (StartOptions.Timeout); 0: only ctx bounds it.
func (c *Client) Ensure(ctx context.Context, name string, timeout time.Duration) (Service, error) {
	return c.EnsureWith(ctx, name, StartOptions{Timeout: timeout})
}

// EnsureWith is Ensure with every option (Wait is implied).
func (c *Client) EnsureWith(ctx context.Context, name string, o StartOptions) (Service, error) {
	o.Wait = false // implied; not part of the route
	ctx, cancel, q := o.bound(ctx)
	defer cancel()
	return c.action(ctx, name, "ensure", q)
}

func actionQuery(profile string, wait bool) url.Values {
	q := url.Values{}
	if profile != "" {
		q.Set("profile", profile)
	}
	if wait {
		q.Set("wait", "1")
	}
	return q
}

// Reload makes the daemon re-read its configuration.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var r ReloadResult
	return r, c.do(ctx, "POST", "/v1/reload", nil, &r)
}

// Shutdown stops every service, verifies nothing is left, and ends the daemon.
func (c *Client) Shutdown(ctx context.Context) (ShutdownResult, error) {
	var r ShutdownResult
	return r, c.do(ctx, "POST", "/v1/shutdown", nil, &r)
}

// Reap stops what earlier runs left behind (dryRun: only lists it).
func (c *Client) Reap(ctx context.Context, dryRun bool) ([]ReapReport, error) {
	var out []ReapReport
	q := url.Values{}
	if dryRun {
		q.Set("dry_run", "1")
	}
	return out, c.do(ctx, "POST", "/v1/reap", q, &out)
}

// Bundle writes a diagnostic bundle (of one service, or all with "") in the
// daemon's state directory and returns its path.
func (c *Client) Bundle(ctx context.Context, service string) (string, error) {
	var out struct {
		Path string `json:"path"`
	}
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	return out.Path, c.do(ctx, "POST", "/v1/bundle", q, &out)
}

// Logs returns the last n lines of a service's output; with follow, fn is
// called for every line until ctx ends or the daemon goes away.
func (c *Client) Logs(ctx context.Context, name string, n int, follow bool, fn func(LogLine) error) error {
	q := url.Values{"n": {fmt.Sprint(n)}}
	if follow {
		q.Set("follow", "1")
	}
	return stream(c, ctx, "/v1/services/"+url.PathEscape(name)+"/logs", q, fn)
}

// Events returns the last n events; with follow, fn is called for every new
// one until ctx ends.
func (c *Client) Events(ctx context.Context, n int, follow bool, fn func(Event) error) error {
	q := url.Values{"n": {fmt.Sprint(n)}}
	if follow {
		q.Set("follow", "1")
	}
	return stream(c, ctx, "/v1/events", q, fn)
}

func stream[T any](c *Client, ctx context.Context, path string, q url.Values, fn func(T) error) error {
	return c.call(ctx, "GET", path, q, func(resp *http.Response) error {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var v T
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				return fmt.Errorf("client: decode %s: %w", path, err)
			}
			if err := fn(v); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return nil // the caller ended the stream
		}
		return sc.Err()
	})
}
