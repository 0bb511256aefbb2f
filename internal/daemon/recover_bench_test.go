package daemon

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/statedir"
)

// BenchmarkRecover60kStaleRecords is the daemon's start with a journal of
// 60,000 spawn records whose instances are long gone (issue 12: it took
// 65 s and gave up silently). The figure is the time before anything can
// start; the target is well under a second.
func BenchmarkRecover60kStaleRecords(b *testing.B) {
	dir := b.TempDir()
	state := filepath.Join(dir, ".corral")
	if err := statedir.Prepare(state); err != nil {
		b.Fatal(err)
	}
	jpath := filepath.Join(state, journal.FileName)
	write := func() {
		f, err := os.Create(jpath)
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriter(f)
		for i := 0; i < 60000; i++ {
			fmt.Fprintf(w, `{"seq":%d,"kind":"spawn","service":"webui","instance":"stale%019d","pid":%d,"start":1,"boot":%q,"cgroup":"/sys/fs/cgroup/corral/gone-%d","cmdline":["gone"]}`+"\n",
				i+1, i, 4000000+i%100000, procinfo.BootID(), i)
		}
		w.Flush()
		f.Close()
	}
	log := slog.New(slog.DiscardHandler)
	for b.Loop() {
		b.StopTimer()
		write()
		bus := journal.NewBus(2000, nil)
		b.StartTimer()
		left, _, err := recoverLeftovers(state, statedir.Key(state), jpath, bus, log)
		if err != nil || len(left) != 0 {
			b.Fatal(err, left)
		}
		bus.File().Close()
	}
}
