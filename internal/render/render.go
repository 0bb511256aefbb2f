// Package render owns how corral prints things for people: member trees,
// sizes, durations. Machine output is JSON and never goes through here.
package render

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Proc is the part of a process a tree view shows.
type Proc struct {
	PID, PPID, PGID int
	Cmdline         []string
	RSS             int64
}

// Tree prints procs as a forest by parent. A process whose parent is not in
// the set (the leader, a re-parented daemon) starts a new root; a root
// outside the leader's process group is marked as such.
func Tree(w io.Writer, indent string, procs []Proc, leaderPGID int) {
	byPID := map[int]Proc{}
	kids := map[int][]int{}
	for _, p := range procs {
		byPID[p.PID] = p
	}
	var roots []int
	for _, p := range procs {
		if _, ok := byPID[p.PPID]; ok && p.PPID != p.PID {
			kids[p.PPID] = append(kids[p.PPID], p.PID)
		} else {
			roots = append(roots, p.PID)
		}
	}
	sort.Ints(roots)
	var walk func(pid int, prefix string, last, root bool)
	walk = func(pid int, prefix string, last, root bool) {
		p := byPID[pid]
		branch, next := "", prefix
		if !root {
			if last {
				branch, next = "└─ ", prefix+"   "
			} else {
				branch, next = "├─ ", prefix+"│  "
			}
		}
		note := ""
		if root && leaderPGID != 0 && p.PGID != leaderPGID {
			note = "  (own session, re-parented: found by the container)"
		}
		left := fmt.Sprintf("%s%s%d  %s", prefix, branch, p.PID, Cmd(p.Cmdline, 36))
		fmt.Fprintf(w, "%s%-*s %9s%s\n", indent, 56, left, Bytes(p.RSS), note)
		cs := kids[pid]
		sort.Ints(cs)
		for i, c := range cs {
			walk(c, next, i == len(cs)-1, false)
		}
	}
	for _, r := range roots {
		walk(r, "", true, true)
	}
}

// Cmd shortens a command line to width, showing the program's base name.
func Cmd(argv []string, width int) string {
	if len(argv) == 0 {
		return "?"
	}
	s := strings.Join(append([]string{filepath.Base(argv[0])}, argv[1:]...), " ")
	if width > 3 && len(s) > width {
		s = s[:width-3] + "..."
	}
	return s
}

// Bytes formats a size in MiB (or KiB for small sizes).
func Bytes(b int64) string {
	if b < 1<<20 {
		return fmt.Sprintf("%.0f KiB", float64(b)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// Duration formats d for a status column.
func Duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
