package demo_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/corral-sh/corral/internal/cgroupv2"
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
				if info := cgroupv2.Detect(); !info.Usable || os.Geteuid() != 0 {
					t.Skipf("cgroup tier unavailable (usable=%v, %s, euid %d)", info.Usable, info.Reason, os.Geteuid())
				}
			}
			var out bytes.Buffer
			res, err := demo.Run(context.Background(), &out, demo.Options{Containment: c})
			t.Log("\n" + out.String())
			if err != nil {
				t.Fatal(err)
			}
			// The naive kill of the tracked PID must leak (the negative
			// control inside the demo), and corral's stop must not.
			if res.NaiveLeft < res.Members-1 {
				t.Errorf("naive kill left %d of %d", res.NaiveLeft, res.Members)
			}
			if res.Left != 0 || len(res.Report.Survivors) != 0 {
				t.Errorf("left %d after stop, survivors %v", res.Left, res.Report.Survivors)
			}
			if !strings.Contains(out.String(), "0 processes carrying") {
				t.Error("demo did not print the verified count")
			}
		})
	}
}
