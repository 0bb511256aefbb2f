package proctree_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// Resolve names the mechanism Start really gives a tree (what a daemon
// reports as its tier), for every containment it accepts here.
func TestResolveMatchesStart(t *testing.T) {
	for _, c := range []proctree.Containment{proctree.Auto, proctree.ForcePgroup, proctree.ForceCgroup} {
		m, fallback, err := proctree.Resolve(proctree.Options{Containment: c})
		tr, serr := proctree.Start(testproc.Command("sleep"), proctree.Options{Containment: c, Service: "test"})
		if (err == nil) != (serr == nil) {
			t.Fatalf("containment %q: Resolve says %v, Start %v", c, err, serr)
		}
		if serr != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = tr.Stop(ctx, syscall.SIGKILL, 0)
		cancel()
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
		if tr.Mechanism() != m {
			t.Errorf("containment %q: Resolve says %s, Start gave %s", c, m, tr.Mechanism())
		}
		if fallback != "" && (m != proctree.ProcessGroup || c != proctree.Auto) {
			t.Errorf("containment %q gave %s with fallback reason %q", c, m, fallback)
		}
	}
}
