package diag

import (
	"fmt"
	"io"
	"runtime"
)

// Check is one line of the doctor's report.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Doctor is what corral can and cannot guarantee here, and why.
type Doctor struct {
	OS         string   `json:"os"`
	Kernel     string   `json:"kernel"`
	Tier       string   `json:"tier"`
	TierReason string   `json:"tier_reason"`
	Checks     []Check  `json:"checks"`
	Invariants []Check  `json:"invariants"`
	Advice     []string `json:"advice,omitempty"`
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
	fmt.Fprintln(w, "\nguarantees here:")
	for _, c := range d.Invariants {
		fmt.Fprintf(w, "  %s%-34s %s\n", mark(c.OK), c.Name, c.Detail)
	}
	if len(d.Advice) > 0 {
		fmt.Fprintln(w, "\nto get more:")
		for _, a := range d.Advice {
			fmt.Fprintf(w, "  - %s\n", a)
		}
	}
}

func goos() string { return runtime.GOOS + "/" + runtime.GOARCH }
