package demo_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/corral-sh/corral/internal/demo"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

func TestMain(m *testing.M) {
	testproc.Main()
	os.Exit(m.Run())
}

func TestDemoLeavesNothing(t *testing.T) {
	for _, c := range []proctree.Containment{proctree.ForceCgroup, proctree.ForcePgroup} {
		t.Run(string(c), func(t *testing.T) {
			if c == proctree.ForceCgroup {
				if _, _, err := proctree.Resolve(proctree.Options{Containment: c}); err != nil {
					t.Skipf("cgroup tier unavailable (euid %d): %v", os.Geteuid(), err)
				}
			}
			var out bytes.Buffer
			res, err := demo.Run(context.Background(), &out, demo.Options{Containment: c})
			t.Log("\n" + out.String())
			if err != nil {
				t.Fatal(err)
			}
			// The naive kill of the tracked PID must leak (the negative
			// control inside the demo), and corral's shutdown must not.
			if res.NaiveLeft < 9 {
				t.Errorf("naive kill left %d, want the 9 untracked processes", res.NaiveLeft)
			}
			if res.Left != 0 || res.Restarts != 10 || len(res.Counts) != 11 {
				t.Errorf("left %d after shutdown, %d restarts, counts %v", res.Left, res.Restarts, res.Counts)
			}
			for _, c := range res.Counts {
				if c != res.Counts[0] || c < 8 {
					t.Errorf("process counts across restarts: %v", res.Counts)
					break
				}
			}
			if !strings.Contains(out.String(), "0 processes of the 11 instances remain") {
				t.Error("demo did not print the verified count")
			}
		})
	}
}
