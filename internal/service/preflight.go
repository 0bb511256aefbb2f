package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/probe"
	"github.com/corral-sh/corral/internal/procinfo"
)

// externalProbe bounds the check of a server corral did not start; a
// healthy local server answers in milliseconds.
const externalProbe = 500 * time.Millisecond

// preflight checks the ports the service's probes name, outside the loop.
// A port held by a process corral does not own is never touched: if that
// server answers the ready probe it is adopted as external, otherwise the
// start is refused with the holder's pid and command line.
func (l *loop) preflight(cfg *config.Service, gen int) event {
	d := l.s.deps
	refuse := func(code Code, err error) event { return event{kind: EvRefused, gen: gen, code: code, err: err} }
	if d.Leftover != nil {
		if err := d.Leftover(cfg.Name); err != nil {
			return refuse(CodeLeftover, err)
		}
	}
	for _, port := range cfg.Ports() {
		pids, listening, perr := l.holders(port)
		if perr != nil && !errors.Is(perr, errors.ErrUnsupported) {
			return refuse(CodeInternal, fmt.Errorf("checking port %d: %w", port, perr))
		}
		if !listening {
			continue
		}
		var desc []string
		for pass := 0; pass < 2 && listening; pass++ {
			desc = desc[:0]
			reclaimed := false
			for _, pid := range pids {
				if owner := d.OwnerOf(pid); owner != "" {
					return refuse(CodePortInUse, fmt.Errorf("port %d is held by pid %d of service %s", port, pid, owner))
				}
				if pass == 0 && d.Reclaim != nil && d.Reclaim(pid) {
					reclaimed = true
					continue
				}
				desc = append(desc, describePID(pid))
			}
			if !reclaimed {
				break
			}
			// An earlier run's leftover held it and is gone now: its socket
			// closes a moment later. Whoever else holds it is looked at again.
			pids, listening, _ = l.holders(port)
		}
		if !listening {
			continue
		}
		if len(desc) == 0 {
			desc = append(desc, "a process corral cannot inspect (another user's?)")
		}
		if r := cfg.Ready; r.Checks() {
			if probe.Check(context.Background(), r, externalProbe, probe.Options{Containment: d.Containment}) == nil {
				return event{kind: EvFoundExt, gen: gen, external: pids}
			}
		}
		return refuse(CodePortInUse, fmt.Errorf("port %d is held by %s, which corral did not start and will not stop; stop it or change the service's port", port, strings.Join(desc, ", ")))
	}
	return event{kind: EvChecked, gen: gen}
}

// holders lists the port's listeners. A listening socket that no process
// holds is one whose owner just exited: the kernel finishes closing it a
// moment after the fd table is gone (right after our previous instance's
// stop, say), so that is waited out, up to a second.
func (l *loop) holders(port int) ([]int, bool, error) {
	pids, listening, err := procinfo.PortHolders(port)
	for wait := time.Millisecond; err == nil && listening && len(pids) == 0 && wait < time.Second; wait *= 2 {
		sleep(context.Background(), l.s.deps.Clock, wait)
		pids, listening, err = procinfo.PortHolders(port)
	}
	return pids, listening, err
}

func describePID(pid int) string {
	argv, _ := procinfo.Cmdline(pid)
	return fmt.Sprintf("pid %d (%s)", pid, strings.Join(argv, " "))
}
