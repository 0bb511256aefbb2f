// Package reclaim owns finding and stopping what an earlier corral run left
// behind: instances its journal says may still be alive. Their processes are
// found by what survives a crash of corral and PID reuse — the cgroup
// directory and the instance marker in every member's environment — and a
// journaled leader PID is used only when its start time still matches.
// Nothing is ever signalled by PID alone, and nothing by name.
package reclaim

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/proctree"
)

// Report is what reclaiming one instance found and did.
type Report struct {
	Instance string             `json:"instance"`
	Service  string             `json:"service"`
	Cgroup   string             `json:"cgroup,omitempty"`
	Found    []proctree.Process `json:"found"`
	Killed   int                `json:"killed"`
	// Reused names a journaled leader PID that now belongs to an unrelated
	// process (another start time); it was left alone.
	Reused int    `json:"reused,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Reap stops the processes of every instance in live (dryRun: only finds
// them) and journals each reap on bus. It returns one report per instance.
func Reap(ctx context.Context, live []*journal.Instance, dryRun bool, bus *journal.Bus) []Report {
	boot := procinfo.BootID()
	var out []Report
	for _, in := range live {
		r := Report{Instance: in.ID, Service: in.Service, Cgroup: in.Cgroup}
		if in.Boot != "" && in.Boot != boot {
			// Processes do not survive a reboot; neither do cgroups.
			if !dryRun && bus != nil {
				bus.Emit(journal.Event{Kind: journal.Reaped, Service: in.Service, Instance: in.ID,
					Message: "from an earlier boot: nothing can be left"})
			}
			continue
		}
		leaderOurs := false
		if in.PID > 0 {
			if st, err := procinfo.ReadStat(in.PID); err == nil && !st.Zombie() {
				if st.StartTicks == in.Start {
					leaderOurs = true
				} else {
					r.Reused = in.PID
				}
			}
		}
		tr, err := proctree.Adopt(in.ID, proctree.AdoptOptions{CgroupDir: in.Cgroup})
		if errors.Is(err, errors.ErrUnsupported) {
			// Windows: a job dies with the last handle to it, which the
			// earlier corral held; there is nothing left to reap.
			if !dryRun && bus != nil {
				bus.Emit(journal.Event{Kind: journal.Reaped, Service: in.Service, Instance: in.ID,
					Message: "its job died with the corral that held it: nothing can be left"})
			}
			continue
		}
		if err != nil {
			r.Error = err.Error()
			out = append(out, r)
			continue
		}
		r.Found, _ = tr.Members()
		if leaderOurs && !contains(r.Found, in.PID) {
			// The leader dropped its marker and left the cgroup, yet its
			// identity is ours: list it too.
			if st, err := procinfo.ReadStat(in.PID); err == nil {
				argv, _ := procinfo.Cmdline(in.PID)
				r.Found = append(r.Found, proctree.Process{PID: in.PID, PPID: st.PPID, PGID: st.PGID, Cmdline: argv, StartTicks: st.StartTicks, RSS: st.RSS})
			}
		}
		if !dryRun {
			if err := tr.Kill(ctx); err != nil {
				r.Error = err.Error()
			}
			if leaderOurs {
				proctree.SignalIdentity(in.PID, in.Start, syscall.SIGKILL)
			}
			r.Killed = len(r.Found)
			if left, _ := tr.Members(); len(left) > 0 && r.Error == "" {
				r.Error = fmt.Sprintf("%d processes survive", len(left))
			}
			if bus != nil {
				if r.Reused != 0 {
					bus.Emit(journal.Event{Kind: journal.Reused, Service: in.Service, Instance: in.ID, PID: r.Reused,
						Message: fmt.Sprintf("pid %d now belongs to an unrelated process (other start time); left alone", r.Reused)})
				}
				msg := fmt.Sprintf("reaped leftovers of an earlier run: %d processes stopped", r.Killed)
				if r.Error != "" {
					msg = "reap incomplete: " + r.Error
				}
				bus.Emit(journal.Event{Kind: journal.Reaped, Service: in.Service, Instance: in.ID, Cgroup: in.Cgroup, Message: msg,
					Fields: map[string]string{"found": fmt.Sprint(len(r.Found)), "killed": fmt.Sprint(r.Killed), "reused": fmt.Sprint(r.Reused)}})
			}
			// Let the adopted tree finish: its container (the cgroup) is
			// removed once it is seen empty. Releasing first would leave the
			// empty group behind.
			select {
			case <-tr.Done():
			case <-time.After(5 * time.Second):
			}
		}
		tr.Release()
		out = append(out, r)
	}
	return out
}

func contains(ms []proctree.Process, pid int) bool {
	for _, m := range ms {
		if m.PID == pid {
			return true
		}
	}
	return false
}
