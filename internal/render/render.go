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
	"unicode/utf8"
)

// Proc is the part of a process a tree view shows.
type Proc struct {
	PID, PPID, PGID int
	Cmdline         []string
	RSS             int64
}

// Tree prints procs as a forest by parent. A process whose parent is not in
// the set (the leader, a re-parented daemon) starts a new root; a root
// outside the leader's process group is marked as such. Command lines are
// cut at 36 characters.
func Tree(w io.Writer, indent string, procs []Proc, leaderPGID int) {
	for _, r := range treeRows(procs, leaderPGID, 36) {
		fmt.Fprintf(w, "%s%-*s %9s%s\n", indent, 56, r.left, Bytes(r.rss), r.note)
	}
}

// TreeWidth prints the forest of Tree with every line fitted into width
// columns, command lines cut to what is left of it; width 0 prints them
// whole (for a pipe or a file).
func TreeWidth(w io.Writer, indent string, procs []Proc, leaderPGID, width int) {
	rows := treeRows(procs, leaderPGID, 0)
	pad, rssW := 0, 9
	for _, r := range rows {
		pad = max(pad, utf8.RuneCountInString(r.left))
		rssW = max(rssW, len(Bytes(r.rss)))
	}
	budget := 0 // columns for left; 0: no limit
	if width > 0 {
		budget = max(width-utf8.RuneCountInString(indent)-1-rssW, 20)
		pad = min(pad, budget)
	}
	for _, r := range rows {
		left := r.left
		if budget > 0 {
			left = Fit(left, budget)
		}
		line := fmt.Sprintf("%s%s%s %*s%s", indent, left, strings.Repeat(" ", max(pad-utf8.RuneCountInString(left), 0)), rssW, Bytes(r.rss), r.note)
		if width > 0 {
			line = Fit(line, width)
		}
		fmt.Fprintln(w, line)
	}
}

// Fit cuts s to at most width characters (runes), ending a cut line in
// "…"; width 0 or less leaves s whole.
func Fit(s string, width int) string {
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	if width == 1 {
		return "…"
	}
	return string(r[:width-1]) + "…"
}

type treeRow struct {
	left, note string
	rss        int64
	pid        int
}

// TreeRow is one line of the forest Tree prints: Left is its branches,
// pid and whole command line, Note what Tree prints after the size (a
// re-parented root's mark, or ""). PID names the process, for a view that
// adds columns of its own (corral top's CPU and GPU memory).
type TreeRow struct {
	Left, Note string
	PID        int
}

// TreeRows lays out procs as Tree does, in the same order, command lines
// whole: the caller fits them to its width.
func TreeRows(procs []Proc, leaderPGID int) []TreeRow {
	rows := treeRows(procs, leaderPGID, 0)
	out := make([]TreeRow, len(rows))
	for i, r := range rows {
		out[i] = TreeRow{Left: r.left, Note: r.note, PID: r.pid}
	}
	return out
}

// treeRows lays out the forest: each row's tree branches, pid and command
// line (cut at cmdWidth; 0: whole).
func treeRows(procs []Proc, leaderPGID, cmdWidth int) []treeRow {
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
	var rows []treeRow
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
		rows = append(rows, treeRow{left: fmt.Sprintf("%s%s%d  %s", prefix, branch, p.PID, Cmd(p.Cmdline, cmdWidth)), rss: p.RSS, note: note, pid: p.PID})
		cs := kids[pid]
		sort.Ints(cs)
		for i, c := range cs {
			walk(c, next, i == len(cs)-1, false)
		}
	}
	for _, r := range roots {
		walk(r, "", true, true)
	}
	return rows
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
