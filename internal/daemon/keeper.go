package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/reclaim"
	"github.com/corral-sh/corral/internal/statedir"
)

// The keeper is a small process the daemon starts in a session of its own.
// It holds the read end of a pipe whose write end only the daemon has. When
// the daemon exits cleanly it writes keeperBye first; any other end of the
// pipe (SIGKILL, a crash, the OOM killer) means the daemon died with its
// services running, and the keeper reaps every instance the journal says
// is alive. The journal is on disk before each program runs, so the keeper
// never misses one.
const keeperBye = "bye\n"

// RunKeeper waits on ctl and reaps if the daemon dies. stateDir holds the
// journal.
func RunKeeper(stateDir string, ctl io.Reader) error {
	msg, _ := io.ReadAll(ctl)
	if bytes.Contains(msg, []byte(keeperBye)) {
		return nil
	}
	path := filepath.Join(stateDir, journal.FileName)
	events, _, err := journal.ReadFile(path)
	if err != nil {
		// A journal it cannot read hides nothing: the trees are found by
		// their cgroups and markers all the same.
		events = nil
	}
	found, _ := reclaim.Discover(statedir.Key(stateDir))
	live, _ := reclaim.Merge(journal.Live(events), found)
	bus := journal.NewBus(100, nil)
	if f, err := journal.OpenFile(path); err == nil {
		bus.SetFile(f)
		defer f.Close()
	}
	bus.Emit(journal.Event{Kind: journal.Daemon, Message: fmt.Sprintf("keeper %d: the daemon died; reaping %d live instances", os.Getpid(), len(live))})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reports := reclaim.Reap(ctx, live, reclaim.Options{Bus: bus})
	removeKeyGroup(statedir.Key(stateDir))
	for _, r := range reports {
		if r.Error != "" {
			return fmt.Errorf("keeper: instance %s of %s: %s", r.Instance, r.Service, r.Error)
		}
	}
	return nil
}
