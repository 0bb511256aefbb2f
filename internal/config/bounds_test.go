package config

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// svc is a minimal valid service with extra keys.
func svc(extra string) string { return "[services.a]\ncommand = [\"x\"]\n" + extra }

// Every bound of docs/configuration.md is checked at load, with the
// position of the key at fault; the degenerate inputs of the "bound every
// input" issue are among the cases.
func TestBoundsRefused(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("s", 300)
	for _, tc := range []struct{ name, src, want string }{
		// [corral]
		{"leak_sweep 0s panicked NewTicker", "[corral]\nleak_sweep = \"0s\"\n", `c.toml:2:1: corral.leak_sweep: "0s" is below the minimum of 100ms`},
		{"leak_sweep 1ns burnt a core", "[corral]\nleak_sweep = \"1ns\"\n", `c.toml:2:1: corral.leak_sweep: "1ns" is below the minimum of 100ms`},
		{"leak_sweep too long", "[corral]\nleak_sweep = \"25h\"\n", `c.toml:2:1: corral.leak_sweep: "25h" is above the maximum of 24h`},
		{"watch_interval 0s", "[corral]\nwatch_interval = \"0s\"\n", `c.toml:2:1: corral.watch_interval: "0s" is below the minimum of 10ms`},
		{"watch_interval 9ms", "[corral]\nwatch_interval = \"9ms\"\n", `c.toml:2:1: corral.watch_interval: "9ms" is below the minimum of 10ms`},
		{"watch_interval too long", "[corral]\nwatch_interval = \"61m\"\n", `c.toml:2:1: corral.watch_interval: "61m" is above the maximum of 1h`},
		{"bundle_cooldown 0s", "[corral]\nbundle_cooldown = \"0s\"\n", `c.toml:2:1: corral.bundle_cooldown: "0s" is below the minimum of 1s`},
		{"bundle_cooldown too long", "[corral]\nbundle_cooldown = \"169h\"\n", `c.toml:2:1: corral.bundle_cooldown: "169h" is above the maximum of 168h`},
		{"shutdown_timeout 0s", "[corral]\nshutdown_timeout = \"0s\"\n", `c.toml:2:1: corral.shutdown_timeout: "0s" is below the minimum of 1s`},
		{"shutdown_timeout 999ms", "[corral]\nshutdown_timeout = \"999ms\"\n", `c.toml:2:1: corral.shutdown_timeout: "999ms" is below the minimum of 1s`},
		{"shutdown_timeout too long", "[corral]\nshutdown_timeout = \"2h\"\n", `c.toml:2:1: corral.shutdown_timeout: "2h" is above the maximum of 1h`},
		{"negative duration", "[corral]\nleak_sweep = \"-1s\"\n", `c.toml:2:1: corral.leak_sweep: "-1s" is not a duration`},
		{"overflowing duration", "[corral]\nleak_sweep = \"9999999999h\"\n", `c.toml:2:1: corral.leak_sweep: "9999999999h" is not a duration`},
		{"global processes", "[corral]\nlimits = { processes = 1000001 }\n", `c.toml:2:12: corral.limits.processes: 1000001 is above the maximum of 1000000`},
		{"global memory overflow", "[corral]\nlimits = { memory = \"99999999999999999999TiB\" }\n", `c.toml:2:12: corral.limits.memory: "99999999999999999999TiB" is too large`},

		// probes
		{"health interval 1ns burnt a core", svc("health = { tcp = \"127.0.0.1:1\", interval = \"1ns\" }\n"), `c.toml:3:33: services.a.health.interval: "1ns" is below the minimum of 10ms`},
		{"health interval 0s", svc("health = { tcp = \"127.0.0.1:1\", interval = \"0s\" }\n"), `c.toml:3:33: services.a.health.interval: "0s" is below the minimum of 10ms`},
		{"health interval too long", svc("health = { tcp = \"127.0.0.1:1\", interval = \"2h\" }\n"), `c.toml:3:33: services.a.health.interval: "2h" is above the maximum of 1h`},
		{"health timeout 1ns", svc("health = { tcp = \"127.0.0.1:1\", timeout = \"1ns\" }\n"), `c.toml:3:33: services.a.health.timeout: "1ns" is below the minimum of 10ms`},
		{"health timeout too long", svc("health = { tcp = \"127.0.0.1:1\", timeout = \"61m\" }\n"), `c.toml:3:33: services.a.health.timeout: "61m" is above the maximum of 1h`},
		{"health failures 0", svc("health = { tcp = \"127.0.0.1:1\", failures = 0 }\n"), `c.toml:3:33: services.a.health.failures: 0 is outside 1..1000`},
		{"health failures negative", svc("health = { tcp = \"127.0.0.1:1\", failures = -1 }\n"), `c.toml:3:33: services.a.health.failures: -1 is outside 1..1000`},
		{"health failures too many", svc("health = { tcp = \"127.0.0.1:1\", failures = 1001 }\n"), `c.toml:3:33: services.a.health.failures: 1001 is outside 1..1000`},
		{"ready interval 1ns", svc("[services.a.ready]\ntcp = \"127.0.0.1:1\"\ninterval = \"1ns\"\n"), `c.toml:5:1: services.a.ready.interval: "1ns" is below the minimum of 10ms`},
		{"ready interval too long", svc("[services.a.ready]\ntcp = \"127.0.0.1:1\"\ninterval = \"2h\"\n"), `c.toml:5:1: services.a.ready.interval: "2h" is above the maximum of 1h`},
		{"ready timeout 0s", svc("[services.a.ready]\ntcp = \"127.0.0.1:1\"\ntimeout = \"0s\"\n"), `c.toml:5:1: services.a.ready.timeout: "0s" is below the minimum of 10ms`},
		{"ready timeout too long", svc("[services.a.ready]\ntcp = \"127.0.0.1:1\"\ntimeout = \"25h\"\n"), `c.toml:5:1: services.a.ready.timeout: "25h" is above the maximum of 24h`},
		{"ready failures", svc("ready = { tcp = \"127.0.0.1:1\", failures = 3 }\n"), `c.toml:3:32: services.a.ready.failures: failures applies to health, not ready`},

		// restart
		{"zero backoff and zero window restarted thousands of times", svc("restart = { backoff = \"0s\", window = \"0s\" }\n"), `c.toml:3:29: services.a.restart.window: "0s" is below the minimum of 1s; to turn the start limit off write burst = 0`},
		{"window 0s", svc("[services.a.restart]\nwindow = \"0s\"\n"), `c.toml:4:1: services.a.restart.window: "0s" is below the minimum of 1s; to turn the start limit off write burst = 0`},
		{"window 1ms", svc("[services.a.restart]\nwindow = \"1ms\"\n"), `c.toml:4:1: services.a.restart.window: "1ms" is below the minimum of 1s; to turn the start limit off write burst = 0`},
		{"window too long", svc("[services.a.restart]\nwindow = \"169h\"\n"), `c.toml:4:1: services.a.restart.window: "169h" is above the maximum of 168h`},
		{"burst 1e9", svc("restart = { burst = 1000000000 }\n"), `c.toml:3:13: services.a.restart.burst: 1000000000 is outside 0..1000`},
		{"burst 1001", svc("[services.a.restart]\nburst = 1001\n"), `c.toml:4:1: services.a.restart.burst: 1001 is outside 0..1000`},
		{"burst negative", svc("[services.a.restart]\nburst = -1\n"), `c.toml:4:1: services.a.restart.burst: -1 is outside 0..1000`},
		{"backoff too long", svc("[services.a.restart]\nbackoff = \"61m\"\n"), `c.toml:4:1: services.a.restart.backoff: "61m" is above the maximum of 1h`},
		{"max_backoff too long", svc("[services.a.restart]\nmax_backoff = \"25h\"\n"), `c.toml:4:1: services.a.restart.max_backoff: "25h" is above the maximum of 24h`},
		{"max_backoff below backoff", svc("[services.a.restart]\nbackoff = \"10s\"\nmax_backoff = \"1s\"\n"), `c.toml:5:1: services.a.restart.max_backoff: 1s is shorter than backoff (10s)`},
		{"stable_after too long", svc("[services.a.restart]\nstable_after = \"25h\"\n"), `c.toml:4:1: services.a.restart.stable_after: "25h" is above the maximum of 24h`},
		{"jitter 1", svc("[services.a.restart]\njitter = 1.0\n"), `c.toml:4:1: services.a.restart.jitter: 1 is outside [0, 1)`},
		{"jitter nan", svc("[services.a.restart]\njitter = nan\n"), `c.toml:4:1: services.a.restart.jitter: NaN is outside [0, 1)`},
		{"jitter negative", svc("[services.a.restart]\njitter = -0.1\n"), `c.toml:4:1: services.a.restart.jitter: -0.1 is outside [0, 1)`},

		// stop
		{"grace too long", svc("stop = { grace = \"61m\" }\n"), `c.toml:3:10: services.a.stop.grace: "61m" is above the maximum of 1h`},

		// limits
		{"processes too many", svc("limits = { processes = 1000001 }\n"), `c.toml:3:12: services.a.limits.processes: 1000001 is above the maximum of 1000000`},
		{"processes negative", svc("limits = { processes = -1 }\n"), `c.toml:3:12: services.a.limits.processes: must not be negative`},
		{"fork_rate too high", svc("limits = { fork_rate = 1000001.0 }\n"), `c.toml:3:12: services.a.limits.fork_rate: 1.000001e+06 is above the maximum of 1e+06`},
		{"fork_rate nan", svc("limits = { fork_rate = nan }\n"), `c.toml:3:12: services.a.limits.fork_rate: NaN is not a number of processes per second`},
		{"fork_rate inf", svc("limits = { fork_rate = inf }\n"), `c.toml:3:12: services.a.limits.fork_rate: +Inf is not a number of processes per second`},
		{"fork_rate negative", svc("limits = { fork_rate = -1.0 }\n"), `c.toml:3:12: services.a.limits.fork_rate: must not be negative`},
		{"memory overflow was reported negative", svc("limits = { memory = \"99999999999999999999TiB\" }\n"), `c.toml:3:12: services.a.limits.memory: "99999999999999999999TiB" is too large`},
		{"memory 2^63", svc("limits = { memory = \"8388608TiB\" }\n"), `c.toml:3:12: services.a.limits.memory: "8388608TiB" is too large`},
		{"memory negative bytes", svc("limits = { memory = -1 }\n"), `c.toml:3:12: services.a.limits.memory: must not be negative`},

		// strings that reach the operating system
		{"NUL in command", svc("[services.b]\ncommand = [\"x\", \"a\\u0000b\"]\n"), `c.toml:4:1: services.b.command: an argument must not contain a NUL byte`},
		{"NUL in program", "[services.a]\ncommand = [\"x\\u0000\"]\n", `c.toml:2:1: services.a.command: an argument must not contain a NUL byte`},
		{"empty program", "[services.a]\ncommand = [\"\", \"x\"]\n", `c.toml:2:1: services.a.command: the program (its first element) is empty`},
		{"NUL in shell", "[services.a]\nshell = \"echo \\u0000\"\n", `c.toml:2:1: services.a.shell: the command line must not contain a NUL byte`},
		{"NUL in env value", svc("env = { A = \"1\", B = \"x\\u0000y\" }\n"), `c.toml:3:18: services.a.env.B: a value must not contain a NUL byte`},
		{"NUL in dir", svc("dir = \"/tmp\\u0000x\"\n"), `c.toml:3:1: services.a.dir: a path must not contain a NUL byte`},
		{"NUL in pidfile", svc("pidfile = \"a\\u0000.pid\"\n"), `c.toml:3:1: services.a.pidfile: a path must not contain a NUL byte`},
		{"NUL in restart_file", svc("restart_file = \"a\\u0000\"\n"), `c.toml:3:1: services.a.restart_file: a path must not contain a NUL byte`},
		{"NUL in a profile", svc("profiles = { p = [\"--x\\u0000\"] }\n"), `c.toml:3:14: services.a.profiles.p: an argument must not contain a NUL byte`},
		{"NUL in exec probe", svc("ready = { exec = [\"true\", \"\\u0000\"] }\n"), `c.toml:3:11: services.a.ready.exec: an argument must not contain a NUL byte`},
		{"empty exec program", svc("health = { exec = [\"\"] }\n"), `c.toml:3:12: services.a.health.exec: the program (its first element) is empty`},
		{"missing dir", svc("dir = '" + missing + "'\n"), `c.toml:3:1: services.a.dir: ` + missing + ` does not exist`},
		{"missing relative dir", svc("dir = \"nope\"\n"), `c.toml:3:1: services.a.dir: ` + filepath.Join("cfg", "nope") + ` does not exist`},
		{"dir is a file", svc("dir = '" + file + "'\n"), `c.toml:3:1: services.a.dir: ` + file + ` is not a directory`},

		// names
		{"300-character service name", "[services." + long + "]\ncommand = [\"x\"]\n", `c.toml:1:1: services.` + long + `: service name is 300 characters long; at most 64 are allowed`},
		{"65-character service name", "[services." + strings.Repeat("a", 65) + "]\ncommand = [\"x\"]\n", `service name is 65 characters long; at most 64 are allowed`},
		{"bad service name", "[services.\"a b\"]\ncommand = [\"x\"]\n", `c.toml:1:1: services.a b: service names use letters`},
		{"65-character profile name", svc("[services.a.profiles]\n" + strings.Repeat("p", 65) + " = [\"x\"]\n"), `c.toml:4:1: services.a.profiles.` + strings.Repeat("p", 65) + `: profile name is 65 characters long; at most 64 are allowed`},
		{"bad profile name", svc("profiles = { \"-p\" = [\"x\"] }\n"), `services.a.profiles.-p: profile names use letters`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(filepath.Join("cfg", "c.toml"), tc.src)
			if err == nil {
				t.Fatalf("accepted: %+v", f)
			}
			if f != nil {
				t.Fatal("a bad config returned a configuration")
			}
			want := strings.Replace(tc.want, "c.toml:", filepath.Join("cfg", "c.toml")+":", 1)
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, want)
			}
		})
	}
}

// The bounds are inclusive, and the documented special values are kept.
func TestBoundsAccepted(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, src string
		check     func(*File) bool
	}{
		{"minima", "[corral]\nwatch_interval = \"10ms\"\nleak_sweep = \"100ms\"\nbundle_cooldown = \"1s\"\nshutdown_timeout = \"1s\"\n", func(f *File) bool {
			return f.Watch.Interval == 10*time.Millisecond && f.Watch.LeakSweep == 100*time.Millisecond && f.Watch.BundleCooldown == time.Second && f.ShutdownTimeout == time.Second
		}},
		{"maxima", "[corral]\nwatch_interval = \"1h\"\nleak_sweep = \"24h\"\nbundle_cooldown = \"168h\"\nshutdown_timeout = \"1h\"\nlimits = { processes = 1000000, fork_rate = 1e6, memory = \"8388607TiB\" }\n", func(f *File) bool {
			return f.Watch.Interval == time.Hour && f.Watch.LeakSweep == 24*time.Hour && f.Watch.BundleCooldown == 168*time.Hour && f.ShutdownTimeout == time.Hour &&
				f.Watch.Limits == Limits{Processes: 1e6, ForkRate: 1e6, Memory: 8388607 << 40}
		}},
		{"defaults", "", func(f *File) bool {
			return f.Watch.Interval == time.Second && f.Watch.LeakSweep == 30*time.Second && f.Watch.BundleCooldown == 5*time.Minute && f.ShutdownTimeout == time.Minute
		}},
		{"probe bounds", svc("ready = { tcp = \"127.0.0.1:1\", interval = \"10ms\", timeout = \"24h\" }\nhealth = { tcp = \"127.0.0.1:1\", interval = \"1h\", timeout = \"10ms\", failures = 1000 }\n"), func(f *File) bool {
			a := f.Services["a"]
			return a.Ready.Interval == 10*time.Millisecond && a.Ready.Timeout == 24*time.Hour && a.Health.Interval == time.Hour && a.Health.Timeout == 10*time.Millisecond && a.Health.Failures == 1000
		}},
		{"failures 1", svc("health = { tcp = \"127.0.0.1:1\", failures = 1 }\n"), func(f *File) bool { return f.Services["a"].Health.Failures == 1 }},
		{"failures default", svc("health = { tcp = \"127.0.0.1:1\" }\n"), func(f *File) bool { return f.Services["a"].Health.Failures == 3 }},
		{"immediate restarts within the default start limit", svc("restart = { backoff = \"0s\" }\n"), func(f *File) bool {
			r := f.Services["a"].Restart
			return r.Backoff == 0 && r.Burst == 5 && r.Window == 10*time.Minute
		}},
		{"no start limit when written", svc("restart = { backoff = \"0s\", max_backoff = \"0s\", burst = 0 }\n"), func(f *File) bool {
			r := f.Services["a"].Restart
			return r.Backoff == 0 && r.MaxBackoff == 0 && r.Burst == 0
		}},
		{"restart maxima", svc("restart = { backoff = \"1h\", max_backoff = \"24h\", burst = 1000, window = \"168h\", stable_after = \"24h\", jitter = 0.0 }\n"), func(f *File) bool {
			r := f.Services["a"].Restart
			return r.Backoff == time.Hour && r.MaxBackoff == 24*time.Hour && r.Burst == 1000 && r.Window == 168*time.Hour && r.StableAfter == 24*time.Hour && r.Jitter == 0
		}},
		{"backoff alone raises max_backoff", svc("restart = { backoff = \"1h\" }\n"), func(f *File) bool { return f.Services["a"].Restart.MaxBackoff == time.Hour }},
		{"window 1s, stable_after 0s", svc("restart = { window = \"1s\", stable_after = \"0s\" }\n"), func(f *File) bool {
			r := f.Services["a"].Restart
			return r.Window == time.Second && r.StableAfter == 0
		}},
		{"grace 0s and 1h", svc("stop = { grace = \"0s\" }\n[services.b]\ncommand = [\"x\"]\nstop = { grace = \"1h\" }\n"), func(f *File) bool {
			return f.Services["a"].Stop.Grace == 0 && f.Services["b"].Stop.Grace == time.Hour
		}},
		{"64-character names", "[services." + strings.Repeat("a", 64) + "]\ncommand = [\"x\"]\nprofiles = { " + strings.Repeat("p", 64) + " = [\"--x\"] }\n", func(f *File) bool {
			return f.Services[strings.Repeat("a", 64)] != nil
		}},
		{"existing dir", svc("dir = '" + dir + "'\n"), func(f *File) bool { return f.Services["a"].Dir == dir }},
		{"relative dir", svc("dir = \".\"\n"), func(f *File) bool { return f.Services["a"].Dir == dir }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(filepath.Join(dir, "c.toml"), tc.src)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(f) {
				t.Fatalf("parsed to %+v", f.Services["a"])
			}
		})
	}
}

func TestParseSizeBounds(t *testing.T) {
	huge := strings.Repeat("9", 400)
	for in, want := range map[string]string{
		"99999999999999999999TiB": "too large",
		"8388608TiB":              "too large", // 2^63
		"9223372036854775808":     "too large",
		huge:                      "too large",
		huge + "." + huge + "GB":  "too large",
		"NaN":                     "is not a size",
		"Inf":                     "is not a size",
		"-1":                      "is not a size",
		".":                       "is not a size",
		"1..2":                    "is not a size",
		"1e3":                     "unknown unit",
	} {
		if n, err := ParseSize(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSize(%.40q) = %d, %v; want an error with %q", in, n, err, want)
		}
	}
	for in, want := range map[string]int64{"8388607TiB": 8388607 << 40, "0": 0, "0.5": 0, "9223372036854774784": math.MaxInt64 - 1023} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// A reload reads the file with Load: a dir that does not exist fails it
// there, before the supervisor changes anything.
func TestLoadRefusesMissingDir(t *testing.T) {
	d := t.TempDir()
	path := filepath.Join(d, "corral.toml")
	if err := os.WriteFile(path, []byte("[services.a]\ncommand = [\"x\"]\n\n[services.b]\ncommand = [\"x\"]\ndir = \"gone\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + ":6:1: services.b.dir: " + filepath.Join(d, "gone") + " does not exist"; err == nil || err.Error() != want {
		t.Fatalf("Load: %v\nwant %s", err, want)
	}
	if err := os.Mkdir(filepath.Join(d, "gone"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
}

func TestDashboardAddress(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"[corral]\nhttp = \"127.0.0.1:8999\"\n", ""},
		{"[corral]\nhttp = \"127.0.0.1:0\"\n", ""},
		{"[corral]\nhttp = \"0.0.0.0:8999\"\n", `c.toml:2:1: corral.http: "0.0.0.0:8999": the dashboard can start and stop services, so it listens on 127.0.0.1 only (write "127.0.0.1:8999")`},
		{"[corral]\nhttp = \"8999\"\n", `c.toml:2:1: corral.http: "8999" is not an address (write "127.0.0.1:PORT"; PORT 0 picks a free one)`},
		{"[corral]\nhttp = \"127.0.0.1:70000\"\n", `c.toml:2:1: corral.http: "127.0.0.1:70000" is not an address`},
	} {
		f, err := Parse("c.toml", c.src)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.src, err)
		case c.want == "" && f.HTTP == "":
			t.Errorf("%q: address not kept", c.src)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%q: got %v, want %s", c.src, err, c.want)
		}
	}
}

func TestGPUMemoryLimitKey(t *testing.T) {
	f, err := Parse("c.toml", "[services.a]\ncommand = [\"x\"]\nlimits = { gpu_memory = \"20GiB\" }\n")
	if err != nil || f.Services["a"].Limits.GPUMemory != 20<<30 {
		t.Fatalf("%v %+v", err, f)
	}
	if _, err := Parse("c.toml", "[services.a]\ncommand = [\"x\"]\nlimits = { gpu_memory = \"lots\" }\n"); err == nil || !strings.Contains(err.Error(), "services.a.limits.gpu_memory") {
		t.Fatalf("a bad size: %v", err)
	}
	if _, err := Parse("c.toml", "[services.a]\ncommand = [\"x\"]\nlimits = { gpu_mem = \"1GiB\" }\n"); err == nil || !strings.Contains(err.Error(), `did you mean "gpu_memory"`) {
		t.Fatalf("a misspelt key: %v", err)
	}
}
