package reclaim

import (
	"os"
	"sort"

	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/procinfo"
)

// Discover finds the instances of the state directory whose key is key
// that may be alive now, from what survives without any journal: the
// groups under a "corral/KEY" cgroup anywhere in the cgroup2 mount (the
// cgroup tiers), and every process whose environment carries
// CORRAL_STATE=KEY (both tiers). The journal is then one memory among
// three: a truncated, damaged or deleted journal hides nothing.
//
// A marked process's variables come from its ancestors' environments, so a
// process that carries our key descends from one of our trees (or was
// given it by its own user, who then asks for it to be stopped).
func Discover(key string) ([]*journal.Instance, error) {
	found := map[string]*journal.Instance{}
	groups, gerr := discoverGroups(key)
	for _, g := range groups {
		found[g.ID] = g
	}
	snap, perr := procinfo.Snapshot()
	self := os.Getpid()
	for _, st := range snap {
		if st.Zombie() || st.PID == self || st.PID <= 2 || st.PPID == 2 {
			continue
		}
		m := procinfo.ReadMarkers(st.PID)
		if m.Instance == "" {
			// A tree's shim names its instance: what it holds may carry no
			// readable marker at all (setproctitle).
			m.Instance = m.Shim
		}
		if m.State != key || m.Instance == "" || !samePidNS(st.PID) {
			continue
		}
		in := found[m.Instance]
		if in == nil {
			in = &journal.Instance{ID: m.Instance, Service: m.Service}
			found[m.Instance] = in
		}
		if in.Service == "" {
			in.Service = m.Service
		}
	}
	out := make([]*journal.Instance, 0, len(found))
	for _, in := range found {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if gerr != nil {
		return out, gerr
	}
	if perr != nil && len(snap) == 0 {
		return out, perr
	}
	return out, nil
}

// Merge returns the instances of the journal's live records and of what
// Discover found, once each: a journal record keeps its leader's identity,
// a discovered group adds the cgroup a damaged record lost.
func Merge(fromJournal, discovered []*journal.Instance) (all []*journal.Instance, unjournaled int) {
	byID := map[string]*journal.Instance{}
	for _, in := range fromJournal {
		byID[in.ID] = in
		all = append(all, in)
	}
	for _, d := range discovered {
		if in := byID[d.ID]; in != nil {
			if in.Cgroup == "" {
				in.Cgroup = d.Cgroup
			}
			if in.Service == "" {
				in.Service = d.Service
			}
			continue
		}
		d.Unjournaled = true
		byID[d.ID] = d
		all = append(all, d)
		unjournaled++
	}
	return all, unjournaled
}
