package config

import (
	"fmt"
	"slices"
)

// What corral keeps of a service's output: logs = { ... } of a service,
// over logs = { ... } of [corral], over the defaults below. [corral]'s
// rotation (max_size, keep, compress) is also daemon.log's.

// Defaults and bounds of the logs keys (docs/configuration.md lists them).
const (
	DefaultLogMaxSize = 10_000_000 // "10MB"
	DefaultLogKeep    = 3
	DefaultLogLines   = 5000
	DefaultLogMemory  = 1 << 20 // "1MiB"

	minLogMaxSize = 100_000           // "100KB": a smaller file would rotate every few lines
	maxLogMaxSize = 1_000_000_000_000 // "1TB"
	maxLogKeep    = 1000
	minLogLines   = 1
	maxLogLines   = 100_000
	minLogMemory  = 16 << 10  // "16KiB": one line of the longest kept
	maxLogMemory  = 256 << 20 // "256MiB" per service
)

type rawLogs struct {
	MaxSize  any   `toml:"max_size"`
	Keep     *int  `toml:"keep"`
	Compress *bool `toml:"compress"`
	Lines    *int  `toml:"lines"`
	Memory   any   `toml:"memory"`
}

func init() {
	knownKeys = append(knownKeys, "logs", "max_size", "keep", "compress", "lines")
}

// LogSettings are the logs keys as a table gives them: a zero (nil) field
// was not given and falls back (File.LogsOf).
type LogSettings struct {
	MaxSize  int64 // bytes past which the file is rotated
	Keep     *int  // rotated copies kept
	Compress *bool // gzip the rotated copies
	Lines    int   // lines kept in memory (what corral logs serves)
	Memory   int64 // bytes those lines may take in memory
}

// Logs are a service's resolved log settings.
type Logs struct {
	MaxSize  int64
	Keep     int
	Compress bool
	Lines    int
	Memory   int64
}

// over returns s with every key s does not give taken from d.
func (s LogSettings) over(d Logs) Logs {
	out := d
	if s.MaxSize > 0 {
		out.MaxSize = s.MaxSize
	}
	if s.Keep != nil {
		out.Keep = *s.Keep
	}
	if s.Compress != nil {
		out.Compress = *s.Compress
	}
	if s.Lines > 0 {
		out.Lines = s.Lines
	}
	if s.Memory > 0 {
		out.Memory = s.Memory
	}
	return out
}

// DefaultLogs is what a service gets when no logs key says otherwise.
func DefaultLogs() Logs {
	return Logs{MaxSize: DefaultLogMaxSize, Keep: DefaultLogKeep, Lines: DefaultLogLines, Memory: DefaultLogMemory}
}

// LogsOf resolves the log settings of s (a service of f, or one defined
// through the API): its own logs keys over [corral]'s over the defaults.
// f may be nil (no [corral] table to fall back on).
func (f *File) LogsOf(s *Service) Logs {
	d := DefaultLogs()
	if f != nil {
		d = f.Logs.over(d)
	}
	if s == nil {
		return d
	}
	return s.Logs.over(d)
}

// DaemonLogs is the rotation of daemon.log: [corral]'s logs keys.
func (f *File) DaemonLogs() Logs { return f.LogsOf(nil) }

// logs validates a logs = { ... } table (nil: not given).
func (p *parser) logs(key []string, r *rawLogs) LogSettings {
	var out LogSettings
	if r == nil {
		return out
	}
	sub := func(k string) []string { return append(slices.Clone(key), k) }
	size := func(k string, v any, lo, hi int64, los, his string) int64 {
		var n int64
		var given string
		switch v := v.(type) {
		case nil:
			return 0
		case int64:
			n, given = v, fmt.Sprintf("%d bytes", v)
		case string:
			var err error
			if n, err = ParseSize(v); err != nil {
				p.errAt(sub(k), "%v", err)
				return 0
			}
			given = fmt.Sprintf("%q", v)
		default:
			p.errAt(sub(k), "write a size: %q or a number of bytes", los)
			return 0
		}
		switch {
		case n < lo:
			p.errAt(sub(k), "%s is below the minimum of %s", given, los)
			return 0
		case n > hi:
			p.errAt(sub(k), "%s is above the maximum of %s", given, his)
			return 0
		}
		return n
	}
	out.MaxSize = size("max_size", r.MaxSize, minLogMaxSize, maxLogMaxSize, "100KB", "1TB")
	out.Memory = size("memory", r.Memory, minLogMemory, maxLogMemory, "16KiB", "256MiB")
	if r.Keep != nil {
		if k := *r.Keep; k < 0 || k > maxLogKeep {
			p.errAt(sub("keep"), "%d is outside 0..%d (0 keeps no rotated copy)", k, maxLogKeep)
		} else {
			out.Keep = r.Keep
		}
	}
	out.Compress = r.Compress
	if r.Lines != nil {
		if n := *r.Lines; n < minLogLines || n > maxLogLines {
			p.errAt(sub("lines"), "%d is outside %d..%d", n, minLogLines, maxLogLines)
		} else {
			out.Lines = n
		}
	}
	return out
}
