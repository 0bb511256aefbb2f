package procinfo

import (
	"os"
	"testing"
	"time"
)

func TestParseStatOddCommandNames(t *testing.T) {
	line := "4242 (a) b (c) d) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1000 37 18446744073709551615\n"
	s, err := parseStat(4242, []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if s.Comm != "a) b (c) d" || s.State != 'S' || s.PPID != 1 || s.PGID != 4242 || s.SID != 4242 || s.StartTicks != 98765 || s.RSS != 37*pageSize {
		t.Fatalf("parsed %+v", s)
	}
	if _, err := parseStat(1, []byte("1 (x) S 0")); err == nil {
		t.Fatal("short stat accepted")
	}
}

func TestMarkerIn(t *testing.T) {
	for env, want := range map[string]string{
		"A=1\x00CORRAL_INSTANCE=abc\x00B=2\x00": "abc",
		"CORRAL_INSTANCE=first\x00":             "first",
		"XCORRAL_INSTANCE=no\x00":               "",
		"CORRAL_INSTANCEX=no\x00":               "",
		"":                                      "",
		"CORRAL_INSTANCE=tail":                  "tail",
	} {
		if got := markerIn([]byte(env)); got != want {
			t.Errorf("markerIn(%q) = %q, want %q", env, got, want)
		}
	}
}

func TestSelf(t *testing.T) {
	s, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PPID != os.Getppid() || s.RSS <= 0 || s.StartTicks == 0 {
		t.Fatalf("own stat %+v", s)
	}
	if StartTime(s.StartTicks).IsZero() || BootID() == "unknown" {
		t.Fatal("no start time or boot id")
	}
	if _, err := ReadStat(1 << 30); err != ErrNotFound {
		t.Fatalf("missing pid: %v", err)
	}
	argv, err := Cmdline(os.Getpid())
	if err != nil || len(argv) == 0 || argv[0] != os.Args[0] {
		t.Fatalf("cmdline %q %v, want %q first", argv, err, os.Args[0])
	}
}

func TestReadStatCPU(t *testing.T) {
	// Burn processor time until the kernel's tick accounting shows it.
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for time.Now().Before(deadline) {
		for i := 0; i < 1e6; i++ {
			x += i
		}
		if s, err := ReadStat(os.Getpid()); err != nil {
			t.Fatal(err)
		} else if s.CPU > 0 {
			return
		}
	}
	t.Fatalf("no CPU time accounted after 5s of work (%d)", x)
}
