package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/client"
)

// errUnhealthy marks a health check that answered "no": exit 1, the
// message already printed.
var errUnhealthy = errors.New("not healthy")

// healthVerdict decides a health check from a service's state. Readiness
// asks "send it traffic now?": only a service that answers (ready), a
// one-shot that finished (done), or a server that already serves its port
// (external) passes. Liveness asks "is restarting the whole container the
// only way out?": it fails only in states corral does not leave by
// itself (failed after the start limit, a stop that could not empty the
// tree, a frozen runaway, a service nobody will start again). A service
// that is starting, in backoff or being restarted is live: corral is
// already acting on it, and a cluster that restarted the pod then would
// only lose the work in progress.
func healthVerdict(state string, live bool) bool {
	if live {
		switch state {
		case "failed", "stop-failed", "frozen", "stopped":
			return false
		}
		return true
	}
	switch state {
	case "ready", "done", "external":
		return true
	}
	return false
}

func addHealthCommand(root *cobra.Command, g *globals) {
	var live bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "health [SERVICE|@GROUP...]",
		Short: "Exit 0 if the services are ready (--live: alive); for container and cluster probes",
		Long: `health asks the daemon for each service's state and exits 0 only if every one
passes; with no SERVICE, every service of the daemon. It prints one line per
service. It starts nothing and waits for nothing beyond --timeout.

Readiness (the default) passes in the states ready, done and external.
Liveness (--live) fails only where corral will not recover by itself:
failed, stop-failed, frozen and stopped; a service that is starting or
restarting is alive.

Exit codes: 0 healthy, 1 not healthy (or the daemon did not answer in time),
2 unknown service, 4 no daemon, 5 a socket this user may not use.`,
		Example: `  corral health webui              # readiness probe: exit 0 once webui is ready
  corral health --live             # liveness probe over every service
  # Kubernetes:
  #   readinessProbe: {exec: {command: [corral, -c, /app/corral.toml, health, webui]}}
  #   livenessProbe:  {exec: {command: [corral, -c, /app/corral.toml, health, --live]}}`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			cl := g.client()
			var list []client.Service
			if len(args) == 0 {
				var err error
				if list, err = cl.List(ctx, false); err != nil {
					return err
				}
			} else {
				names, err := g.expand(args)
				if err != nil {
					return err
				}
				for _, n := range names {
					s, err := cl.Inspect(ctx, n)
					if err != nil {
						return err
					}
					list = append(list, s)
				}
			}
			if g.json {
				if err := writeJSON(cmd.OutOrStdout(), healthJSON(list, live)); err != nil {
					return err
				}
			}
			bad := 0
			for _, s := range list {
				ok := healthVerdict(s.State, live)
				if !ok {
					bad++
				}
				if g.json {
					continue
				}
				verdict := "ok"
				if !ok {
					verdict = "NOT " + map[bool]string{false: "READY", true: "LIVE"}[live]
				}
				line := fmt.Sprintf("%s: %s (%s", s.Name, verdict, s.State)
				if s.Reason != "" && s.Reason != s.State {
					line += ": " + s.Reason
				}
				fmt.Fprintln(cmd.OutOrStdout(), line+")")
			}
			if bad > 0 {
				return fmt.Errorf("%w: %d of %d services", errUnhealthy, bad, len(list))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&live, "live", false, "liveness instead of readiness: fail only where corral will not recover by itself")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up (exit 1) when the daemon has not answered within this")
	root.AddCommand(c)
}

type healthEntry struct {
	Service string `json:"service"`
	State   string `json:"state"`
	Reason  string `json:"reason"`
	Healthy bool   `json:"healthy"`
}

func healthJSON(list []client.Service, live bool) []healthEntry {
	out := make([]healthEntry, 0, len(list))
	for _, s := range list {
		out = append(out, healthEntry{Service: s.Name, State: s.State, Reason: s.Reason, Healthy: healthVerdict(s.State, live)})
	}
	return out
}
