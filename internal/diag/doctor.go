package diag

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/statedir"
)

// Check is one line of the doctor's report.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Doctor is what corral can and cannot guarantee here, and why.
type Doctor struct {
	OS         string  `json:"os"`
	Kernel     string  `json:"kernel"`
	Tier       string  `json:"tier"`
	TierReason string  `json:"tier_reason"`
	Checks     []Check `json:"checks"`
	Invariants []Check `json:"invariants"`
	// Guarantees is the full table: every invariant in every tier and
	// platform, with the case that breaks each, this machine's tier marked.
	Guarantees *Guarantees `json:"guarantees"`
	// StateDir and State: whether the state directory can be trusted and
	// what is in it (a damaged journal kept aside, a missing socket).
	StateDir string   `json:"state_dir,omitempty"`
	State    []Check  `json:"state,omitempty"`
	Advice   []string `json:"advice,omitempty"`
}

// CheckState looks at the state directory dir without changing it.
func CheckState(dir string) []Check {
	var out []Check
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return append(out, Check{"state directory", true, "not created yet: the first daemon makes it, private to you (0700)"})
	}
	if err := statedir.Check(dir); err != nil {
		out = append(out, Check{"state directory trusted", false, err.Error()})
	} else {
		out = append(out, Check{"state directory trusted", true, "a real directory of yours; no one else can write to it or its parents"})
	}
	events, damage, err := journal.Check(filepath.Join(dir, journal.FileName))
	switch {
	case err != nil:
		out = append(out, Check{"journal", false, err.Error() + ": nothing can start until it can be written"})
	case damage.Damaged():
		out = append(out, Check{"journal", false, fmt.Sprintf("%d damaged lines: the next daemon keeps it aside and finds leftovers by their cgroups and markers", damage.Lines)})
	default:
		out = append(out, Check{"journal", true, fmt.Sprintf("%d events readable, %d instances may be alive", len(events), len(journal.Live(events)))})
	}
	if kept := journal.DamagedFiles(dir); len(kept) > 0 {
		out = append(out, Check{"damaged journals kept aside", false, strings.Join(kept, ", ") + " (look, then remove them)"})
	}
	return out
}

// Print writes the report for people.
func (d Doctor) Print(w io.Writer) {
	fmt.Fprintf(w, "corral doctor: %s, kernel %s\n", d.OS, d.Kernel)
	fmt.Fprintf(w, "containment: %s — %s\n\n", d.Tier, d.TierReason)
	mark := func(ok bool) string {
		if ok {
			return "ok  "
		}
		return "NO  "
	}
	fmt.Fprintln(w, "mechanisms:")
	for _, c := range d.Checks {
		fmt.Fprintf(w, "  %s%-34s %s\n", mark(c.OK), c.Name, c.Detail)
	}
	if d.Guarantees != nil && d.Guarantees.Current != "" {
		d.Guarantees.print(w)
	} else {
		fmt.Fprintln(w, "\nguarantees here:")
		for _, c := range d.Invariants {
			fmt.Fprintf(w, "  %s%-34s %s\n", mark(c.OK), c.Name, c.Detail)
		}
	}
	if d.StateDir != "" {
		fmt.Fprintf(w, "\nstate directory %s:\n", d.StateDir)
		for _, c := range d.State {
			fmt.Fprintf(w, "  %s%-34s %s\n", mark(c.OK), c.Name, c.Detail)
		}
	}
	if len(d.Advice) > 0 {
		fmt.Fprintln(w, "\nto get more:")
		for _, a := range d.Advice {
			fmt.Fprintf(w, "  - %s\n", a)
		}
	}
}

func goos() string { return runtime.GOOS + "/" + runtime.GOARCH }
