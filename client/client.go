package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/corral-sh/corral/internal/ipc"
)

// Client talks to one daemon.
type Client struct {
	hc     *http.Client
	socket string
}

// New returns a client for the daemon listening on socket.
func New(socket string) *Client {
	tr := &http.Transport{
		// A unix socket, or a named pipe on Windows.
		DialContext:  ipc.Dialer(socket),
		MaxIdleConns: 4,
	}
	return &Client{hc: &http.Client{Transport: tr}, socket: socket}
}

// ErrNoDaemon is returned (wrapped) when nothing answers on the socket.
var ErrNoDaemon = errors.New("client: no corral daemon is running")

func (c *Client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	resp, err := c.open(ctx, method, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: decode %s %s: %w", method, path, err)
	}
	return nil
}

func (c *Client) open(ctx context.Context, method, path string, q url.Values) (*http.Response, error) {
	u := "http://corral" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) && ne.Op == "dial" {
			return nil, fmt.Errorf("%w on %s", ErrNoDaemon, c.socket)
		}
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
		}
		return nil, e
	}
	return resp, nil
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
	// Timeout bounds the wait in the daemon, which then answers
	// CodeTimeout saying what the service was waiting for. 0: no bound
	// but ctx's. Give ctx a little longer than Timeout to read that answer.
	Timeout time.Duration
}

func (o StartOptions) query() url.Values {
	q := actionQuery(o.Profile, o.Wait)
	if o.RestartIfDifferent {
		q.Set("restart_if_different", "1")
	}
	if o.Timeout > 0 {
		q.Set("timeout", o.Timeout.String())
	}
	return q
}

// Start starts a service; wait makes it return once ready.
func (c *Client) Start(ctx context.Context, name, profile string, wait bool) (Service, error) {
	return c.StartWith(ctx, name, StartOptions{Profile: profile, Wait: wait})
}

// StartWith starts a service with every option. A service that runs is
// left as it is, unless o asks for another profile.
func (c *Client) StartWith(ctx context.Context, name string, o StartOptions) (Service, error) {
	return c.action(ctx, name, "start", o.query())
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
// concurrent calls lead to one instance. timeout bounds the wait in the
// daemon (StartOptions.Timeout); 0: only ctx bounds it.
func (c *Client) Ensure(ctx context.Context, name string, timeout time.Duration) (Service, error) {
	return c.EnsureWith(ctx, name, StartOptions{Timeout: timeout})
}

// EnsureWith is Ensure with every option (Wait is implied).
func (c *Client) EnsureWith(ctx context.Context, name string, o StartOptions) (Service, error) {
	o.Wait = false // implied; not part of the route
	return c.action(ctx, name, "ensure", o.query())
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
	resp, err := c.open(ctx, "GET", path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
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
		return nil
	}
	return sc.Err()
}
