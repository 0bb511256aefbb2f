package config

import (
	"fmt"
	"math"
	"os"
	"strings"
	"time"
)

// The bounds of every duration and count, checked at load so that a value
// that would panic the daemon (a zero ticker period), burn a core (a probe
// every nanosecond) or switch a safety off by accident (a zero start-limit
// window) is refused with its position instead. docs/configuration.md lists
// each bound next to its key; keep the two in step.
const (
	minWatchInterval = 10 * time.Millisecond
	maxWatchInterval = time.Hour
	// The leak sweep reads every process of the host; 100ms rather than a
	// round 1s because the end-to-end leak test (cmd/corral) sweeps every
	// 200ms to stay quick.
	minLeakSweep       = 100 * time.Millisecond
	maxLeakSweep       = 24 * time.Hour
	minBundleCooldown  = time.Second
	maxBundleCooldown  = 7 * 24 * time.Hour
	minShutdownTimeout = time.Second
	maxShutdownTimeout = time.Hour

	minProbeInterval = 10 * time.Millisecond
	maxProbeInterval = time.Hour
	minProbeTimeout  = 10 * time.Millisecond
	maxReadyTimeout  = 24 * time.Hour
	maxHealthTimeout = time.Hour
	minFailures      = 1
	maxFailures      = 1000

	maxRestartBackoff = time.Hour
	maxMaxBackoff     = 24 * time.Hour
	maxBurst          = 1000
	minWindow         = time.Second
	maxWindow         = 7 * 24 * time.Hour
	maxStableAfter    = 24 * time.Hour
	maxGrace          = time.Hour

	maxProcesses = 1_000_000
	maxForkRate  = 1e6

	// maxNameLen bounds service and profile names: a service's name is part
	// of its log file's name, and file names end at 255 bytes.
	maxNameLen = 64
)

// fmtDur writes a bound the way a user would: "24h", "5m", "10ms".
func fmtDur(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if d >= u.d && d%u.d == 0 {
			return fmt.Sprintf("%d%s", d/u.d, u.name)
		}
	}
	return d.String()
}

// durationIn parses a duration that, when given, must lie in [lo, hi]. An
// out-of-range value is reported and def returned. hint, when set, is added
// to the message for a value below lo.
func (p *parser) durationIn(key []string, s string, def, lo, hi time.Duration, hint string) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		p.errAt(key, "%q is not a duration (write e.g. \"500ms\", \"10s\", \"2m\")", s)
		return def
	}
	switch {
	case d < lo:
		p.errAt(key, "%q is below the minimum of %s%s", s, fmtDur(lo), hint)
		return def
	case d > hi:
		p.errAt(key, "%q is above the maximum of %s", s, fmtDur(hi))
		return def
	}
	return d
}

// noNUL reports a string that cannot reach the operating system: argv
// elements, environment values and paths end at a NUL byte.
func (p *parser) noNUL(key []string, what string, ss ...string) bool {
	for _, s := range ss {
		if strings.IndexByte(s, 0) >= 0 {
			p.errAt(key, "%s must not contain a NUL byte", what)
			return false
		}
	}
	return true
}

// checkName reports a service or profile name outside the charset or
// longer than maxNameLen.
func (p *parser) checkName(key []string, what, name string) {
	switch {
	case !nameRE.MatchString(name):
		p.errAt(key, "%s names use letters, digits, '.', '_' and '-', starting with a letter or digit", what)
	case len(name) > maxNameLen:
		p.errAt(key, "%s name is %d characters long; at most %d are allowed", what, len(name), maxNameLen)
	}
}

// checkDir reports a working directory that does not exist or is not a
// directory. It is checked at load so that a reload with such a file fails
// before anything changes.
func (p *parser) checkDir(key []string, dir string) {
	fi, err := os.Stat(dir)
	switch {
	case os.IsNotExist(err):
		p.errAt(key, "%s does not exist", dir)
	case err != nil:
		if pe, ok := err.(*os.PathError); ok {
			err = pe.Err
		}
		p.errAt(key, "%s cannot be used: %v", dir, err)
	case !fi.IsDir():
		p.errAt(key, "%s is not a directory", dir)
	}
}

// finite reports whether f is a number (not NaN nor an infinity).
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
