package supervisor

import (
	"path/filepath"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/logs"
	"github.com/corral-sh/corral/internal/service"
)

// sinkFor returns a new sink for service cfg of f: its file under the
// state directory (with the tail of what an earlier run wrote there), with
// the service's logs settings.
func (s *Supervisor) sinkFor(f *config.File, cfg *config.Service) *logs.Sink {
	keep, rot := sinkSettings(f.LogsOf(cfg))
	o := logs.Options{Keep: keep, Rotation: rot}
	if s.opts.StateDir != "" {
		o.File = filepath.Join(s.opts.StateDir, "logs", cfg.Name+".log")
	}
	return logs.NewSink(o)
}

func sinkSettings(l config.Logs) (logs.Keep, logs.Rotation) {
	return logs.Keep{Lines: l.Lines, Memory: l.Memory}, logs.Rotation{MaxSize: l.MaxSize, Keep: l.Keep, Compress: l.Compress}
}

// configureSinks applies f's logs settings to the running services' sinks
// (a reload: no service is restarted for them).
func (s *Supervisor) configureSinks(f *config.File) {
	s.mu.Lock()
	svcs := make(map[string]*service.Service, len(s.svcs))
	for name, svc := range s.svcs {
		svcs[name] = svc
	}
	s.mu.Unlock()
	for name, svc := range svcs {
		if c := f.Services[name]; c != nil {
			svc.Logs().Configure(sinkSettings(f.LogsOf(c)))
		}
	}
}

// closeSink records a service's numbering of lines beside its log file
// for the sink a later daemon (or a later definition of it) opens there.
func closeSink(svc *service.Service) { svc.Logs().Close() }
