package service

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/proctree"
)

// stopTree stops an instance's tree outside the loop and posts the result.
func (l *loop) stopTree(inst *instance, kill bool, main int) {
	cfg, clock := inst.cfg, l.s.deps.Clock
	go func() {
		var rep proctree.StopReport
		var err error
		var note string
		if kill {
			// Frozen, or past a limit: it can act on no signal; kill it.
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			rep, err = inst.tree.Stop(ctx, syscall.SIGKILL, 0)
			cancel()
		} else {
			rep, note, err = stopOrder(inst, cfg, clock, main)
		}
		k := EvEmpty
		if err != nil {
			k = EvStopFail
		}
		l.s.post(event{kind: k, inst: inst.id, report: &rep, err: err, hookNote: note})
	}()
}

// stopOrder runs the stop order: the stop hook (when the server is still
// there to hear it and its command line enables it), the stop signal to
// every member, the grace period, a kill of the whole container, and a
// bounded wait until it is empty. A hook that does not answer 2xx costs
// nothing of the grace: the signal follows at once.
func stopOrder(inst *instance, cfg *config.Service, clock Clock, main int) (proctree.StopReport, string, error) {
	tr, grace := inst.tree, cfg.Stop.Grace
	var note string
	serverAlive := true
	select {
	case <-tr.Exited():
		// The launcher is gone; a forking daemon's master or a launcher's
		// successor may still be there to hear the hook.
		serverAlive = false
		if main != 0 {
			st, err := procinfo.ReadStat(main)
			serverAlive = err == nil && !st.Zombie()
		}
	default:
	}
	// The start's own environment counts as the service's (COMMANDLINE_ARGS).
	if h := cfg.WithEnv(inst.vars).HookFor(inst.argv); h != nil && serverAlive {
		began := clock.Now()
		ok, desc := callHook(h, min(grace, 5*time.Second))
		note = desc
		if ok {
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-tr.Done():
					cancel()
				case <-ctx.Done():
				}
			}()
			sleep(ctx, clock, grace/2)
			cancel()
			select {
			case <-tr.Done():
				return proctree.StopReport{Signal: "hook", Duration: clock.Now().Sub(began)}, note + "; the tree ended on it", nil
			default:
			}
			grace -= clock.Now().Sub(began)
			grace = max(grace, 0)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace+15*time.Second)
	defer cancel()
	rep, err := tr.Stop(ctx, cfg.Stop.Signal, grace)
	return rep, note, err
}

// callHook asks the server to stop itself; ok only for a 2xx answer.
func callHook(h *config.Hook, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, h.Method, h.URL, nil)
	if err != nil {
		return false, fmt.Sprintf("stop hook %s %s: %v; stopping by signal", h.Method, h.URL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, fmt.Sprintf("stop hook %s %s failed: %v; stopping by signal", h.Method, h.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return false, fmt.Sprintf("stop hook %s %s answered %s; stopping by signal at once", h.Method, h.URL, resp.Status)
	}
	return true, fmt.Sprintf("stop hook %s %s answered %s", h.Method, h.URL, resp.Status)
}
