package config

import (
	"strings"
	"testing"
)

// logs = { ... } of a service over [corral]'s over the defaults, key by key.
func TestLogsKeys(t *testing.T) {
	f, err := Parse("c.toml", `
[corral]
logs = { max_size = "50MB", keep = 5, lines = 20000 }

[services.a]
command = ["x"]
logs = { keep = 0, compress = true, memory = "4MiB" }

[services.b]
command = ["x"]
`)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.LogsOf(f.Services["a"]); got != (Logs{MaxSize: 50_000_000, Keep: 0, Compress: true, Lines: 20000, Memory: 4 << 20}) {
		t.Errorf("a: %+v", got)
	}
	if got := f.LogsOf(f.Services["b"]); got != (Logs{MaxSize: 50_000_000, Keep: 5, Lines: 20000, Memory: DefaultLogMemory}) {
		t.Errorf("b: %+v", got)
	}
	if got := f.DaemonLogs(); got.MaxSize != 50_000_000 || got.Keep != 5 || got.Compress {
		t.Errorf("daemon.log: %+v", got)
	}
	var none *File
	if got := none.LogsOf(&Service{}); got != DefaultLogs() || got != (Logs{MaxSize: 10_000_000, Keep: 3, Lines: 5000, Memory: 1 << 20}) {
		t.Errorf("defaults: %+v", got)
	}
}

func TestLogsKeysRefused(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{svc(`logs = { max_size = "10KB" }`), `c.toml:3:10: services.a.logs.max_size: "10KB" is below the minimum of 100KB`},
		{svc(`logs = { max_size = "2TB" }`), `services.a.logs.max_size: "2TB" is above the maximum of 1TB`},
		{svc(`logs = { max_size = 10 }`), `services.a.logs.max_size: 10 bytes is below the minimum of 100KB`},
		{svc(`logs = { max_size = "ten" }`), `services.a.logs.max_size: "ten" is not a size`},
		{svc(`logs = { keep = -1 }`), `c.toml:3:10: services.a.logs.keep: -1 is outside 0..1000 (0 keeps no rotated copy)`},
		{svc(`logs = { keep = 1001 }`), `services.a.logs.keep: 1001 is outside 0..1000`},
		{svc(`logs = { lines = 0 }`), `services.a.logs.lines: 0 is outside 1..100000`},
		{svc(`logs = { lines = 100001 }`), `services.a.logs.lines: 100001 is outside 1..100000`},
		{svc(`logs = { memory = "1KiB" }`), `services.a.logs.memory: "1KiB" is below the minimum of 16KiB`},
		{svc(`logs = { memory = "1GiB" }`), `services.a.logs.memory: "1GiB" is above the maximum of 256MiB`},
		{svc(`logs = { compress = "yes" }`), `services.a.logs.compress: expected true or false, found a string ("yes")`},
		{svc(`logs = { keep = "3" }`), `services.a.logs.keep: expected an integer (rotated copies kept), found a string ("3")`},
		{svc(`logs = { rotate = 3 }`), `services.a.logs.rotate: unknown key`},
		{svc(`logs = "10MB"`), `services.a.logs: expected a table ({ max_size = "10MB", keep = 3, compress = true }), found a string ("10MB")`},
		{"[corral]\nlogs = { keep = 2000 }\n", `c.toml:2:10: corral.logs.keep: 2000 is outside 0..1000`},
	} {
		_, err := Parse("c.toml", tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\ngot  %v\nwant %s", tc.src, err, tc.want)
		}
	}
}
