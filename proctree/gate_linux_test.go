package proctree_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// The gate runs after the leader exists and before its program runs: what
// is journaled there is on disk before the first instruction.
func TestGateRunsBeforeTheProgram(t *testing.T) {
	tiers(t, func(t *testing.T, c proctree.Containment) {
		mark := filepath.Join(t.TempDir(), "ran")
		var seen proctree.Gated
		var ranBeforeGate bool
		cmd := exec.Command("/bin/sh", "-c", "echo > "+mark+"; exec sleep 30")
		tr, err := proctree.Start(cmd, proctree.Options{Containment: c, Gate: func(g proctree.Gated) error {
			seen = g
			_, err := os.Stat(mark)
			ranBeforeGate = err == nil
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// Not t.Context(): it is canceled before cleanups run, which
			// left the leader SIGSTOPped by the kill's freeze and alive.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tr.Kill(ctx); err != nil {
				t.Errorf("cleanup kill: %v", err)
			}
		})
		if ranBeforeGate {
			t.Fatal("the program ran before the gate")
		}
		st, _ := procinfo.ReadStat(tr.PID())
		if seen.PID != tr.PID() || seen.StartTicks != st.StartTicks || seen.Instance != tr.ID() || seen.Boot == "" {
			t.Fatalf("gate saw %+v; leader %d start %d", seen, tr.PID(), st.StartTicks)
		}
		if (c == proctree.ForceCgroup) != (seen.Container != "") {
			t.Fatalf("container %q for %s", seen.Container, c)
		}
		eventually(t, 5*time.Second, "the program to run after the gate", func() bool {
			_, err := os.Stat(mark)
			return err == nil
		})
	})
}

func TestGateRefusalKillsTheLeaderUnrun(t *testing.T) {
	tiers(t, func(t *testing.T, c proctree.Containment) {
		mark := filepath.Join(t.TempDir(), "ran")
		var id string
		cmd := exec.Command("/bin/sh", "-c", "echo > "+mark+"; exec sleep 30")
		cmd.Env = append(os.Environ(), "X=1")
		_, err := proctree.Start(cmd, proctree.Options{Containment: c, Gate: func(g proctree.Gated) error {
			id = g.Instance
			return errors.New("journal: no space left on device")
		}})
		if err == nil {
			t.Fatal("Start succeeded past a refusing gate")
		}
		if _, serr := os.Stat(mark); serr == nil {
			t.Fatal("the program ran although the gate refused")
		}
		if left := testproc.Carriers(id); len(left) > 0 {
			t.Fatalf("refused leader left %v", left)
		}
	})
}
