package diag

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Holds is how far a guarantee holds in a tier.
type Holds string

const (
	HoldsOK      Holds = "ok"      // it holds, save for the table's "everywhere" case
	HoldsPartial Holds = "partial" // it holds except in the case named
	HoldsNo      Holds = "no"      // the tier cannot give it
)

// Tier is one column of the guarantees table.
type Tier struct {
	ID string `json:"id"`
	// Mechanism is the proctree mechanism a tree gets in this tier
	// (cgroup-v2, pgroup, job-object).
	Mechanism string `json:"mechanism"`
	Name      string `json:"name"`
}

// Cell is one guarantee in one tier: how far it holds, and the exact case
// that breaks it there ("" for none known beyond the row's everywhere).
type Cell struct {
	Holds  Holds  `json:"holds"`
	Breaks string `json:"breaks,omitempty"`
}

// Row is one invariant of docs (design.md) across the tiers.
type Row struct {
	Invariant string `json:"invariant"`
	// Everywhere is a case that breaks it in every tier alike ("" for none).
	Everywhere string `json:"everywhere,omitempty"`
	// Cells are in the order of Guarantees.Tiers.
	Cells []Cell `json:"cells"`
}

// Guarantees is the table of what holds in which tier, and which tier this
// machine's trees get (Current, a Tier ID).
type Guarantees struct {
	Tiers   []Tier `json:"tiers"`
	Current string `json:"current"`
	// CurrentReason says how Current was found.
	CurrentReason string `json:"current_reason"`
	Rows          []Row  `json:"rows"`
}

// The tiers, in the table's column order.
const (
	TierCgroupRoot      = "cgroup-root"
	TierCgroupDelegated = "cgroup-delegated"
	TierPgroupShim      = "pgroup-shim"
	TierPgroupNoShim    = "pgroup-noshim"
	TierJobObject       = "job-object"
)

var tiers = []Tier{
	{TierCgroupRoot, "cgroup-v2", "A: cgroup v2 leaf per tree, as root"},
	{TierCgroupDelegated, "cgroup-v2", "A: cgroup v2 leaf per tree, in a delegated subtree (not root)"},
	{TierPgroupShim, "pgroup", "B: process group + marker + ancestry under a per-tree shim (Linux)"},
	{TierPgroupNoShim, "pgroup", "B without a shim or subreaper (macOS; Linux if the shim is lost)"},
	{TierJobObject, "job-object", "Windows: one Job Object per tree"},
}

// The cases, named once: several cells share them.
const (
	caseOutsider   = "a member that asks a process outside the tree to start something (D-Bus activation, systemd-run, an already-running tmux or screen server, at/cron, on Windows a COM out-of-process server or WMI Win32_Process.Create): the new process is the outsider's child, never the tree's"
	caseSelfMove   = "a member that moves itself into another cgroup (root may write its pid into any group's cgroup.procs) is no member any more: cgroup.kill and populated 0 miss it; once its tree is killed it is re-parented to corral, which stops it with the tree if its marker names it, and otherwise says the stop is UNVERIFIED (a stray of unknown tree, exit 6) and stops it at shutdown"
	caseDelegMove  = "a member that moves itself into another group of the delegated subtree (its user owns all of it) is no member any more: cgroup.kill and populated 0 miss it; once its tree is killed it is re-parented to corral, which stops it with the tree if its marker names it, and otherwise says the stop is UNVERIFIED (exit 6) and stops it at shutdown"
	caseShimKilled = "the tree's shim killed (-9, the OOM killer): its orphans come to corral and are adopted, but a setsid'd descendant that rewrites its environment (nginx `daemon on`, redis --daemonize yes) and reaches corral later is a stray of unknown tree: named by status, stopped only at shutdown, and the tree's stop says UNVERIFIED (exit 6) while one is about"
	caseEscape     = "a descendant that setsids and rewrites its environment (setproctitle: nginx `daemon on`, redis --daemonize yes, postgres) once its parent exits: on Linux it is re-parented to corral as a stray (found and stopped at shutdown, never by its tree's stop, which says UNVERIFIED); on macOS it goes to launchd and nothing finds it"
	caseBothKilled = "the daemon and its keeper killed together (kill -9 of both, the OOM killer): the trees run on until the next corral start reaps them"
	caseDState     = "a process in uninterruptible sleep (hung NFS, a frozen v1 freezer cgroup) outlives SIGKILL: the stop or shutdown times out and names it (exit 3), never claims it gone"
	caseInitMode   = "as PID 1 of a container (init mode), orphans of processes someone else started in the namespace (docker exec) are re-parented to corral too: corral lists them as strays of no known tree but never kills them, and so, as PID 1, cannot use them to prove a stop after a shim died: such a stop says UNVERIFIED"
	caseBurst      = "a fork storm or memory spike between two samples of the watchdog overshoots the limit before the tree is frozen"
)

func guaranteesTable() []Row {
	ok := Cell{Holds: HoldsOK}
	c := func(h Holds, breaks string) Cell { return Cell{Holds: h, Breaks: breaks} }
	return []Row{
		{Invariant: "1 contained from birth", Everywhere: caseOutsider, Cells: []Cell{
			c(HoldsPartial, "CLONE_INTO_CGROUP: in the group before the first instruction; but "+caseSelfMove),
			c(HoldsPartial, "CLONE_INTO_CGROUP; but "+caseDelegMove),
			c(HoldsPartial, "every descendant of the shim is a member, whatever it does to its group or environment; but "+caseShimKilled),
			c(HoldsNo, caseEscape),
			c(HoldsOK, "started suspended, assigned to its job, then resumed; breakaway is never allowed"),
		}},
		{Invariant: "2 stop is complete", Everywhere: caseDState, Cells: []Cell{
			c(HoldsPartial, "cgroup.kill, verified by populated 0; but "+caseSelfMove),
			c(HoldsPartial, "cgroup.kill, verified by populated 0; but "+caseDelegMove),
			c(HoldsPartial, "freeze with SIGSTOP, SIGKILL, rescan until none; but "+caseShimKilled),
			c(HoldsNo, caseEscape),
			c(HoldsOK, "TerminateJobObject, verified by ActiveProcesses 0"),
		}},
		{Invariant: "3 restarts never accumulate", Cells: []Cell{
			c(HoldsPartial, "each restart is a complete stop first, and strays the old instance's marker names go with it; a member that moved out of its group and rewrote its environment (row 1) outlives restarts until the shutdown"),
			c(HoldsPartial, "as tier A root"),
			c(HoldsPartial, "each restart is a complete stop first; strays left after a killed shim pile up until the shutdown"),
			c(HoldsNo, "every restart can leave one more escaped daemon: "+caseEscape),
			ok,
		}},
		{Invariant: "4 tethered to corral", Cells: []Cell{
			c(HoldsPartial, "the keeper writes cgroup.kill when the daemon dies; but "+caseBothKilled),
			c(HoldsPartial, "the keeper writes cgroup.kill when the daemon dies; but "+caseBothKilled),
			c(HoldsPartial, "the keeper kills each tree by its shim's ancestry and marker; but strays corral held (after a shim was killed) go to init when it dies, and an escaped daemon among them (setsid + setproctitle) is out of the keeper's reach; and "+caseBothKilled),
			c(HoldsPartial, "the keeper kills by marker and identity, so an escaped daemon ("+"setsid + setproctitle) is not killed; and "+caseBothKilled),
			c(HoldsOK, "KILL_ON_JOB_CLOSE: the kernel kills every job when the daemon's handles close, however it dies"),
		}},
		{Invariant: "5 nothing is forgotten", Cells: []Cell{
			c(HoldsPartial, "journaled before exec (the ptrace gate); where ptrace is forbidden (yama ptrace_scope 3, seccomp) the spawn is journaled right after the start instead; the next start finds trees by their cgroup even without a journal"),
			c(HoldsPartial, "as tier A root; the next start finds trees by their cgroup in the delegated subtree"),
			c(HoldsPartial, "journaled before exec (the ptrace gate, as tier A); the next start finds trees by marker and by their shim; but a daemon re-parented to init after corral and the shim both died carries neither, and is not found"),
			c(HoldsNo, "the next start finds members by marker and journaled identity only: an escaped daemon (setsid + setproctitle) carries neither"),
			c(HoldsOK, "spawns journaled (pid, creation time) while the leader is suspended; jobs die with the daemon, so nothing is left to find"),
		}},
		{Invariant: "6 never kill what we don't own", Cells: []Cell{
			c(HoldsPartial, "pidfd-verified signals, cgroup.kill of our own groups, strays killed by identity; but "+caseInitMode),
			c(HoldsPartial, "as tier A root; and "+caseInitMode),
			c(HoldsPartial, "pidfd-verified signals; a group is signalled only when all of it are stopped members; but "+caseInitMode),
			c(HoldsPartial, "macOS has no pidfd: check, then kill(); a pid reused in the microseconds between them would be signalled"),
			c(HoldsOK, "only job members are terminated; console events go to the tree's own console"),
		}},
		{Invariant: "7 one instance", Everywhere: "two daemons for one configuration with different state directories: one daemon per state directory, not per configuration", Cells: []Cell{ok, ok, ok, ok, ok}},
		{Invariant: "8 runaways contained", Everywhere: caseBurst, Cells: []Cell{
			c(HoldsPartial, "kernel pids limit where a cgroup v1 pids hierarchy is writable (hybrid and legacy hosts, as root; corral enables no cgroup v2 controller yet), else accounting; memory by accounting each interval"),
			c(HoldsPartial, "kernel limits only for controllers the delegation enabled; else accounting each interval"),
			c(HoldsPartial, "accounting each interval; the freeze is SIGSTOP with a rescan until every member is stopped"),
			c(HoldsPartial, "accounting of what the scan finds; an escaped daemon is not counted"),
			c(HoldsPartial, "accounting from the job's members each interval; no job limits are set"),
		}},
		{Invariant: "9 verified shutdown", Cells: []Cell{
			c(HoldsOK, "every tree verified empty by the kernel, then a marker scan and a scan of strays re-parented to corral; a survivor is named (exit 3)"),
			c(HoldsOK, "as tier A root"),
			c(HoldsOK, "trees by ancestry under their shims, then the marker and stray scans; a killed shim's strays are stopped and counted"),
			c(HoldsPartial, "Linux: escaped daemons are re-parented to corral and found by the stray scan; macOS: no subreaper, so a shutdown with any process-group tree says UNVERIFIED (exit 6), never verified"),
			c(HoldsOK, "every job verified empty by its ActiveProcesses count"),
		}},
		{Invariant: "10 verified means checked", Cells: []Cell{
			c(HoldsOK, "a member that left its group is re-parented to corral when its tree is killed: a stop with a stray of unknown tree about says UNVERIFIED (exit 6)"),
			c(HoldsOK, "as tier A root: a member that left its group is re-parented to corral when its tree is killed, and a stop with a stray of unknown tree about says UNVERIFIED (exit 6)"),
			c(HoldsOK, "a stop after the shim died says UNVERIFIED (exit 6) while a stray of unknown tree is about"),
			c(HoldsOK, "macOS: every stop of a process-group tree says UNVERIFIED (exit 6); Linux without a shim: unless no stray is about"),
			ok,
		}},
	}
}

// newGuarantees is the table with current marked (a Tier ID).
func newGuarantees(current, reason string) *Guarantees {
	return &Guarantees{Tiers: tiers, Current: current, CurrentReason: reason, Rows: guaranteesTable()}
}

// Column returns the cells of tier id, by invariant.
func (g *Guarantees) Column(id string) map[string]Cell {
	for i, t := range g.Tiers {
		if t.ID == id {
			out := make(map[string]Cell, len(g.Rows))
			for _, r := range g.Rows {
				out[r.Invariant] = r.Cells[i]
			}
			return out
		}
	}
	return nil
}

// Tier returns the column of id.
func (g *Guarantees) Tier(id string) (Tier, bool) {
	for _, t := range g.Tiers {
		if t.ID == id {
			return t, true
		}
	}
	return Tier{}, false
}

// print writes the table: a grid of ok/partial/no with this machine's
// column marked, then each case that breaks a guarantee here.
func (g *Guarantees) print(w io.Writer) {
	fmt.Fprintln(w, "\nguarantees per tier (* = the tier this machine's trees get):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"  invariant"}
	for _, t := range g.Tiers {
		id := t.ID
		if id == g.Current {
			id = "*" + id
		}
		head = append(head, id)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range g.Rows {
		line := []string{"  " + r.Invariant}
		for _, c := range r.Cells {
			line = append(line, string(c.Holds))
		}
		fmt.Fprintln(tw, strings.Join(line, "\t"))
	}
	tw.Flush()
	for _, t := range g.Tiers {
		fmt.Fprintf(w, "  %-17s %s\n", t.ID, t.Name)
	}
	col := g.Column(g.Current)
	if col == nil {
		return
	}
	t, _ := g.Tier(g.Current)
	fmt.Fprintf(w, "\nhere (%s: %s; %s):\n", t.ID, t.Name, g.CurrentReason)
	for _, r := range g.Rows {
		c := col[r.Invariant]
		detail := c.Breaks
		if r.Everywhere != "" {
			if detail != "" {
				detail += "; "
			}
			detail += "in every tier: " + r.Everywhere
		}
		fmt.Fprintf(w, "  %-8s%-32s %s\n", c.Holds, r.Invariant, detail)
	}
}

// invariantsOf is the column of tier id as the report's short list: a
// guarantee is OK only where it holds in full.
func invariantsOf(g *Guarantees, id string) []Check {
	col := g.Column(id)
	out := make([]Check, 0, len(g.Rows))
	for _, r := range g.Rows {
		c := col[r.Invariant]
		detail := string(c.Holds)
		if c.Breaks != "" {
			detail += ": " + c.Breaks
		}
		out = append(out, Check{Name: r.Invariant, OK: c.Holds == HoldsOK, Detail: detail})
	}
	return out
}
