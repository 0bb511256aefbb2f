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
	"strconv"
	"strings"
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
	return c.callBody(ctx, method, path, q, nil, read)
}

// callBody is call with a JSON body (nil: none).
func (c *Client) callBody(ctx context.Context, method, path string, q url.Values, body []byte, read func(*http.Response) error) error {
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
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(cctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
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
	return c.actionWith(ctx, name, verb, q, StartOptions{})
}

// actionWith is action with o's arguments and environment as the body.
func (c *Client) actionWith(ctx context.Context, name, verb string, q url.Values, o StartOptions) (Service, error) {
	var s Service
	return s, c.send(ctx, "POST", "/v1/services/"+url.PathEscape(name)+"/"+verb, q, o.body(), &s)
}

// send is do with a JSON body (nil: none).
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	return c.callBody(ctx, method, path, q, body, func(resp *http.Response) error {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("client: decode %s %s: %w", method, path, err)
		}
		return nil
	})
}

// body is the JSON body of a start, ensure or restart: the launch options
// o gives (nil when it gives none).
func (o StartOptions) body() []byte {
	if o.Args == nil && o.Env == nil {
		return nil
	}
	b := map[string]any{}
	if o.Args != nil {
		b["args"] = o.Args // [] when empty: no arguments
	}
	if o.Env != nil {
		b["env"] = o.Env
	}
	out, _ := json.Marshal(b)
	return out
}

// StartOptions qualify a start or an ensure.
type StartOptions struct {
	// Profile is a named argument set from the service's profiles; ""
	// accepts the running instance's, or starts the plain command.
	Profile string
	// Wait makes a start return once the service is ready, not once it
	// runs. An ensure always waits.
	Wait bool
	// Args are this instance's own arguments, appended after the command
	// and the profile's arguments; Env is its own environment, layered
	// over the service's env (docs/api.md, "Launch options"). nil leaves
	// them out: a start or ensure accepts what a running instance has, and
	// a restart keeps it. Non-nil, even empty, they count: a running
	// instance with others fails with CodeProfileMismatch, unless
	// RestartIfDifferent; a restart replaces them.
	Args []string
	Env  map[string]string
	// RestartIfDifferent restarts a running instance of another profile,
	// other Args or another Env instead of failing with
	// CodeProfileMismatch.
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
	return c.actionWith(ctx, name, "start", q, o)
}

// Restart stops a service completely, then starts it.
func (c *Client) Restart(ctx context.Context, name, profile string, wait bool) (Service, error) {
	return c.action(ctx, name, "restart", actionQuery(profile, wait))
}

// RestartWith is Restart with every option: what o names (Profile, Args,
// Env) replaces the instance's, what it leaves out is kept.
// RestartIfDifferent means nothing here.
func (c *Client) RestartWith(ctx context.Context, name string, o StartOptions) (Service, error) {
	o.RestartIfDifferent = false
	ctx, cancel, q := o.bound(ctx)
	defer cancel()
	return c.actionWith(ctx, name, "restart", q, o)
}

// Define makes def the definition of service name (PUT
// /v1/services/NAME): def is marshalled to a JSON object with the keys of
// a [services.NAME] table of corral.toml, e.g. map[string]any{"command":
// []string{"python", "launch.py"}, "ready": map[string]any{"http":
// "http://127.0.0.1:7860/"}}, or is that JSON already (json.RawMessage,
// []byte). It is validated as the file's tables are (CodeBadRequest,
// naming the key; nothing changes), stored in the daemon's state
// directory, and applied as a reload applies a file: a new service starts
// if autostart (the default), a running one whose definition changed is
// restarted with it. A service of the configuration file cannot be
// defined here (CodeDefinedInFile). The answer is the service's status.
func (c *Client) Define(ctx context.Context, name string, def any) (Service, error) {
	var body []byte
	switch d := def.(type) {
	case json.RawMessage:
		body = d
	case []byte:
		body = d
	default:
		var err error
		if body, err = json.Marshal(def); err != nil {
			return Service{}, fmt.Errorf("client: the definition of %s cannot be written as JSON: %w", name, err)
		}
	}
	var s Service
	return s, c.send(ctx, "PUT", "/v1/services/"+url.PathEscape(name), nil, body, &s)
}

// Remove stops a service defined through Define completely (as Stop does)
// and forgets its definition; the answer is its last status, with the
// stop's report. A service of the configuration file cannot be removed
// here (CodeDefinedInFile), nor one another service starts after
// (CodeBadRequest).
func (c *Client) Remove(ctx context.Context, name string) (Service, error) {
	var s Service
	return s, c.send(ctx, "DELETE", "/v1/services/"+url.PathEscape(name), nil, nil, &s)
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
	return c.actionWith(ctx, name, "ensure", q, o)
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

// Dashboard starts the daemon's dashboard on addr ("": the configured
// [corral] http address, else a free port of 127.0.0.1), or finds the one
// that runs, and returns its URL. The URL carries the dashboard's token:
// whoever has it can start and stop services.
func (c *Client) Dashboard(ctx context.Context, addr string) (string, error) {
	var out struct {
		URL string `json:"url"`
	}
	q := url.Values{}
	if addr != "" {
		q.Set("addr", addr)
	}
	return out.URL, c.do(ctx, "POST", "/v1/dashboard", q, &out)
}

// Metrics returns the daemon's metrics in Prometheus' text format.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var b strings.Builder
	err := c.call(ctx, "GET", "/metrics", nil, func(resp *http.Response) error {
		_, err := io.Copy(&b, resp.Body)
		return err
	})
	return b.String(), err
}

// Logs returns the last n lines of a service's output; with follow, fn is
// called for every line until ctx ends or the daemon goes away.
func (c *Client) Logs(ctx context.Context, name string, n int, follow bool, fn func(LogLine) error) error {
	return c.LogsWith(ctx, name, StreamOptions{N: n, Follow: follow}, fn)
}

// Events returns the last n events; with follow, fn is called for every new
// one until ctx ends.
func (c *Client) Events(ctx context.Context, n int, follow bool, fn func(Event) error) error {
	return c.EventsWith(ctx, StreamOptions{N: n, Follow: follow}, fn)
}

// LogsWith is Logs with every option. Lines are numbered per service; a
// daemon restarted after a clean shutdown numbers on (its old lines keep
// their numbers), one started after a crash numbers from 1 again in a new
// epoch, and a Reconnect that finds one starts over at its oldest line. A
// follow without Reconnect returns nil when the daemon ends it as it
// shuts down.
func (c *Client) LogsWith(ctx context.Context, name string, o StreamOptions, fn func(LogLine) error) error {
	return streamWith(c, ctx, "/v1/services/"+url.PathEscape(name)+"/logs", o, func(l LogLine) uint64 { return l.Seq }, fn)
}

// EventsWith is Events with every option. Events are numbered across
// daemon runs (a new daemon numbers on from its journal).
func (c *Client) EventsWith(ctx context.Context, o StreamOptions, fn func(Event) error) error {
	return streamWith(c, ctx, "/v1/events", o, func(e Event) uint64 { return e.Seq }, fn)
}

// StreamOptions select what Logs and Events give.
type StreamOptions struct {
	// N is how many kept items come first: the last N (0: all kept).
	// Ignored when After is set.
	N int
	// After resumes a stream: only items numbered above After (the Seq of
	// the last item an earlier stream gave; 0: not a resume). Items the
	// daemon no longer keeps are skipped: the gap in Seq shows them.
	After uint64
	// Follow gives new items as they come, until ctx ends (or, without
	// Reconnect, the daemon goes away).
	Follow bool
	// Reconnect makes a follow survive a broken connection, a daemon that
	// stopped answering and a restarted daemon: it connects again, with
	// backoff, and resumes after the last item it gave, until ctx ends. A
	// daemon's error answer (an unknown service) still ends it.
	Reconnect bool
	// Heartbeat asks the daemon for a heartbeat this often while a follow
	// has nothing to send (0: the daemon's default, 15s). A follow that
	// gets neither an item nor a heartbeat for twice the interval and 5s
	// more takes the connection as dead: ErrNotAnswering, or a reconnect.
	Heartbeat time.Duration
}

// fnError carries the caller's own error out of a stream untouched: it
// ends the stream, and is never a reason to reconnect.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

func streamWith[T any](c *Client, ctx context.Context, path string, o StreamOptions, seqOf func(T) uint64, fn func(T) error) error {
	after, resume := o.After, o.After > 0
	epoch := "" // the numbering after belongs to (Corral-Epoch), once an answer said
	const firstDelay, maxDelay = 50 * time.Millisecond, 2 * time.Second
	delay := firstDelay
	for {
		q := url.Values{}
		if resume {
			q.Set("after", strconv.FormatUint(after, 10))
			if epoch != "" {
				q.Set("epoch", epoch) // a new daemon's lines start over instead of being skipped
			}
		} else {
			q.Set("n", strconv.Itoa(o.N))
		}
		if o.Follow {
			q.Set("follow", "1")
		}
		if o.Heartbeat > 0 {
			q.Set("heartbeat", o.Heartbeat.String())
		}
		err := streamOnce(c, ctx, path, q, o.Follow && o.Reconnect, func(h http.Header) {
			if e := h.Get("Corral-Epoch"); e != "" {
				epoch = e
			}
		}, func(v T) error {
			after, resume, delay = seqOf(v), true, firstDelay
			if err := fn(v); err != nil {
				return fnError{err}
			}
			return nil
		})
		var fe fnError
		var de *Error
		switch {
		case errors.As(err, &fe):
			return fe.err
		case err == nil, !o.Follow || !o.Reconnect, ctx.Err() != nil, errors.As(err, &de):
			return err
		}
		select {
		case <-ctx.Done():
			return nil // the caller ended the stream
		case <-time.After(delay):
		}
		delay = min(2*delay, maxDelay)
	}
}

// heartbeatSlack is what a follow waits beyond two heartbeat intervals
// before it takes the connection as dead: a loaded daemon or machine may
// send one late. A variable so that tests need not wait.
var heartbeatSlack = 5 * time.Second

// errStreamEnded: the daemon ended a follow (it went away).
var errStreamEnded = errors.New("client: the daemon ended the stream")

// streamOnce reads one answer of newline-delimited JSON, skipping
// heartbeats; a follow whose heartbeats stop is ended as dead. ended: a
// follow the daemon ends is an error (errStreamEnded), to reconnect after.
// answered gets the answer's headers before its first item.
func streamOnce[T any](c *Client, ctx context.Context, path string, q url.Values, ended bool, answered func(http.Header), fn func(T) error) error {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	return c.call(sctx, "GET", path, q, func(resp *http.Response) error {
		answered(resp.Header)
		alive := func() {} // every line, item or heartbeat, says the connection lives
		if ms, err := strconv.ParseInt(resp.Header.Get("Corral-Heartbeat-Ms"), 10, 64); err == nil && ms > 0 {
			every := time.Duration(ms) * time.Millisecond
			limit := 2*every + heartbeatSlack
			dead := time.AfterFunc(limit, func() {
				cancel(&connError{kind: ErrNotAnswering, msg: fmt.Sprintf(
					"client: GET %s: the daemon%s on %s sent neither an item nor a heartbeat (due every %v) for %v: the connection is taken as dead",
					path, c.daemonPID(), c.socket, every, limit)})
			})
			defer dead.Stop()
			alive = func() { dead.Reset(limit) }
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			alive()
			var mark struct {
				Heartbeat bool `json:"heartbeat"`
			}
			if err := json.Unmarshal(sc.Bytes(), &mark); err != nil {
				return fmt.Errorf("client: decode %s: %w", path, err)
			}
			if mark.Heartbeat {
				continue
			}
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
		if err := sc.Err(); err != nil {
			return err
		}
		if ended {
			return errStreamEnded
		}
		return nil
	})
}
