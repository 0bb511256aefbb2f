package daemon

import (
	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/logs"
)

// rotateDaemonLog applies [corral] logs' rotation to daemon.log (when the
// daemon writes one: Options.LogFile), at the start and at each reload.
func rotateDaemonLog(lf *logs.File, cfg *config.File) {
	if lf == nil || cfg == nil {
		return
	}
	l := cfg.DaemonLogs()
	lf.SetRotation(logs.Rotation{MaxSize: l.MaxSize, Keep: l.Keep, Compress: l.Compress})
}
