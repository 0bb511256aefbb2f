package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/logs"
	"github.com/corral-sh/corral/proctree"
)

// client never reuses connections (a restarted server must be seen fresh)
// and ignores proxy settings (probes target local servers).
var client = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// Options tune where exec probes run and who hears of each check.
type Options struct {
	Containment proctree.Containment
	// Observe, if set, is told how long each Check took and how it ended
	// (nil: passed): the probe latency of the metrics.
	Observe func(d time.Duration, err error)
}

// Check runs every configured check of p except the log line, each bounded
// by timeout, and returns the first failure.
func Check(ctx context.Context, p config.Probe, timeout time.Duration, o Options) (err error) {
	if o.Observe != nil {
		began := time.Now()
		defer func() { o.Observe(time.Since(began), err) }()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return check(ctx, p, timeout, o)
}

func check(ctx context.Context, p config.Probe, timeout time.Duration, o Options) error {
	for i, q := range p.All {
		if err := check(ctx, q, timeout, o); err != nil {
			return fmt.Errorf("ready[%d]: %w", i, err)
		}
	}
	if p.HTTP != "" {
		if err := HTTP(ctx, p.HTTP, p); err != nil {
			return err
		}
	}
	if p.TCP != "" {
		if err := TCP(ctx, p.TCP); err != nil {
			return err
		}
	}
	if len(p.Exec) > 0 {
		if err := Exec(ctx, p.Exec, o); err != nil {
			return err
		}
	}
	return nil
}

// HTTP requires a 2xx answer from url and, if p.Body is set, a matching body.
func HTTP(ctx context.Context, url string, p config.Probe) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probe: GET %s: %w", url, unwrapURL(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probe: GET %s: %s", url, resp.Status)
	}
	if p.Body != nil && !p.Body.Match(body) {
		return fmt.Errorf("probe: GET %s: body does not match %q", url, p.Body)
	}
	return nil
}

func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// TCP requires that addr accepts a connection.
func TCP(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("probe: connect %s: %w", addr, err)
	}
	return c.Close()
}

// Exec requires argv to exit 0 before ctx ends. It runs contained, so a
// probe script that leaves children behind leaves nothing.
func Exec(ctx context.Context, argv []string, o Options) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	tr, err := proctree.Start(cmd, proctree.Options{Containment: o.Containment, Service: "probe"})
	if err != nil {
		return fmt.Errorf("probe: run %s: %w", argv[0], err)
	}
	select {
	case <-tr.Exited():
	case <-ctx.Done():
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tr.Stop(stopCtx, syscall.SIGKILL, 0); err == nil {
		tr.OutputDone() // the tree is empty, so the pipe is at EOF
	} else {
		return fmt.Errorf("probe: %s: %w", argv[0], err)
	}
	st, _ := tr.ExitState()
	if st == nil {
		return fmt.Errorf("probe: %s did not finish: %w", argv[0], ctx.Err())
	}
	if !st.Success() {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 200 {
			msg = msg[len(msg)-200:]
		}
		return fmt.Errorf("probe: %s: %s %s", argv[0], st, msg)
	}
	return nil
}

// WaitReady returns nil once every check of p passes and, if p.Log is set, a
// line of output after sequence number since matched it. It gives up after
// p.Timeout with the last failure.
//
// The checks run at once, then every p.Interval, and also right after the
// program prints a line (at most every recheckGap): servers say "listening
// on …" the moment they accept, so a restart is seen ready within
// milliseconds instead of up to an interval later.
// recheckGap bounds the checks that output lines trigger.
const recheckGap = 10 * time.Millisecond

func WaitReady(ctx context.Context, p config.Probe, sink *logs.Sink, since uint64, o Options) error {
	if len(p.All) > 0 {
		return waitAll(ctx, p.All, sink, since, o)
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	logOK := p.Log == nil
	checks := !p.IsZero() && (p.HTTP != "" || p.TCP != "" || len(p.Exec) > 0)
	var lines <-chan logs.Line
	if !logOK || checks {
		past, ch, unsub := sink.Subscribe(-1)
		defer unsub()
		for _, l := range past {
			if l.Seq > since && p.Log != nil && p.Log.MatchString(l.Text) {
				logOK = true
			}
		}
		lines = ch
	}
	var last error
	tick := time.NewTicker(p.Interval)
	defer tick.Stop()
	due := true
	var lastCheck time.Time
	var soon <-chan time.Time // a recheck a line asked for inside the gap
	for {
		if checks && due {
			due = false
			lastCheck = time.Now()
			attempt := max(p.Interval, time.Second)
			err := Check(ctx, p, attempt, o)
			switch {
			case err == nil:
				checks, last = false, nil
			case ctx.Err() == nil || last == nil:
				// An attempt cut short by the overall deadline says less
				// than the failure before it.
				last = err
			}
		}
		if !checks && logOK {
			return nil
		}
		select {
		case l := <-lines:
			if l.Seq <= since {
				break
			}
			if p.Log != nil && !logOK && p.Log.MatchString(l.Text) {
				logOK = true
			}
			if gap := time.Since(lastCheck); checks && gap >= recheckGap {
				due = true
			} else if checks && soon == nil {
				soon = time.After(recheckGap - gap)
			}
		case <-soon:
			soon, due = nil, true
		case <-tick.C:
			due = true
		case <-ctx.Done():
			if !logOK {
				last = errors.Join(last, fmt.Errorf("probe: no output line matched %q", p.Log))
			}
			if last == nil {
				last = ctx.Err()
			}
			return fmt.Errorf("not ready after %v: %w", p.Timeout, last)
		}
	}
}

// waitAll waits for every probe of ready = [ ... ] at once, each within
// its own timeout from now: nil once all passed, the first failure (which
// ends the others) otherwise.
func waitAll(ctx context.Context, all []config.Probe, sink *logs.Sink, since uint64, o Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(all))
	for i, q := range all {
		go func() {
			err := WaitReady(ctx, q, sink, since, o)
			if err != nil {
				err = fmt.Errorf("ready[%d]: %w", i, err)
			}
			errs <- err
		}()
	}
	for range all {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}
