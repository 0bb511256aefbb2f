package importer

import (
	"fmt"
	"io"
	"strings"
)

// Counts returns how many findings are of each kind.
func (r *Result) Counts() (dropped, approx, moot int) {
	for _, f := range r.AllFindings() {
		switch f.Kind {
		case Dropped:
			dropped++
		case Approx:
			approx++
		case Moot:
			moot++
		}
	}
	return
}

// Report writes the import report: what was read, every finding on a line
// of its own (file:line first, so editors and grep can jump to it), and the
// counts. out names the corral.toml the findings are also comments in.
func (r *Result) Report(w io.Writer, out string) {
	fmt.Fprintf(w, "corral import %s: %s from %s\n", r.Format, plural(len(r.Services), "service"), strings.Join(r.Sources, ", "))
	for _, f := range r.AllFindings() {
		fmt.Fprintln(w, f.String())
	}
	d, a, m := r.Counts()
	if d+a+m == 0 {
		fmt.Fprintf(w, "every setting has a corral equivalent\n")
		return
	}
	fmt.Fprintf(w, "%s not imported, %d approximated, %d not needed under corral; each is also a comment in %s\n",
		plural(d, "setting"), a, m, out)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
