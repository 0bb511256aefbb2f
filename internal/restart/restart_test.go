package restart

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func noJitter() float64 { return 0.5 } // 2*0.5-1 = 0: no spread

func pol(mode Mode) Policy {
	return Policy{Mode: mode, Backoff: time.Second, MaxBackoff: 8 * time.Second, Burst: 5, Window: time.Minute, StableAfter: 30 * time.Second}
}

func TestDecideByModeAndExit(t *testing.T) {
	crash := Exit{At: t0, Uptime: time.Second, Code: 1}
	clean := Exit{At: t0, Uptime: time.Second, Code: 0}
	killed := Exit{At: t0, Uptime: time.Second, Signaled: true}
	sick := Exit{At: t0, Uptime: time.Second, Unhealthy: true}
	asked := Exit{At: t0, Uptime: time.Second, Code: 1, Requested: true}
	for _, tc := range []struct {
		mode Mode
		exit Exit
		want Action
	}{
		{Always, crash, Restart},
		{Always, clean, Restart},
		{Always, killed, Restart},
		{Always, asked, Stay},
		{OnFailure, crash, Restart},
		{OnFailure, clean, Stay},
		{OnFailure, killed, Restart},
		{OnFailure, sick, Restart},
		{OnFailure, asked, Stay},
		{Never, crash, Stay},
		{Never, sick, Stay},
	} {
		_, d := pol(tc.mode).Decide(History{}, tc.exit, noJitter)
		if d.Action != tc.want {
			t.Errorf("%s after %+v: %v (%s), want %v", tc.mode, tc.exit, d.Action, d.Reason, tc.want)
		}
	}
}

func TestBackoffDoublesCapsAndResetsAfterStableUptime(t *testing.T) {
	p := pol(Always)
	var h History
	now := t0
	var got []time.Duration
	for i := 0; i < 5; i++ {
		h = p.Started(h, now, false)
		var d Decision
		h, d = p.Decide(h, Exit{At: now.Add(time.Second), Uptime: time.Second, Code: 1}, noJitter)
		got = append(got, d.Delay)
		now = now.Add(time.Minute) // outside the window: no start limit
	}
	want := []time.Duration{1, 2, 4, 8, 8}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("delays %v, want %v seconds", got, want)
		}
	}
	// An instance that ran longer than StableAfter resets the backoff.
	h = p.Started(h, now, false)
	h, d := p.Decide(h, Exit{At: now.Add(time.Hour), Uptime: time.Hour, Code: 1}, noJitter)
	if d.Delay != time.Second || h.Consecutive != 1 {
		t.Fatalf("after a stable run: delay %v consecutive %d, want 1s and 1", d.Delay, h.Consecutive)
	}
}

func TestJitterStaysWithinBounds(t *testing.T) {
	p := pol(Always)
	p.Jitter = 0.2
	for _, j := range []float64{0, 0.25, 0.5, 0.999} {
		_, d := p.Decide(History{Consecutive: 2}, Exit{At: t0, Code: 1}, func() float64 { return j })
		// Consecutive becomes 3: base 4s, ±20%.
		if d.Delay < 3200*time.Millisecond || d.Delay > 4800*time.Millisecond {
			t.Errorf("jitter %v gave %v, outside 4s±20%%", j, d.Delay)
		}
	}
}

func TestStartLimitFailsAndRearms(t *testing.T) {
	p := pol(Always)
	var h History
	var d Decision
	now := t0
	for i := 0; i < p.Burst; i++ {
		h = p.Started(h, now, false)
		now = now.Add(time.Second)
		h, d = p.Decide(h, Exit{At: now, Uptime: time.Second, Code: 2}, noJitter)
		if i < p.Burst-1 && d.Action != Restart {
			t.Fatalf("start %d: %v, want restart", i+1, d.Action)
		}
	}
	if d.Action != Fail {
		t.Fatalf("after %d starts in %v: %v, want fail", p.Burst, p.Window, d.Action)
	}
	if !strings.Contains(d.Reason, "burst 5") || !strings.Contains(d.Reason, "status 2") {
		t.Errorf("reason %q lacks the limit or the last exit", d.Reason)
	}
	// Re-armed when the first counted start leaves the window.
	if want := t0.Add(p.Window); !d.RearmAt.Equal(want) {
		t.Fatalf("RearmAt %v, want %v", d.RearmAt, want)
	}
	// After re-arm, an automatic start is within limits again.
	h = p.Started(h, d.RearmAt, false)
	if !h.FailedAt.IsZero() || len(h.Starts) != p.Burst {
		t.Fatalf("after re-arm: %+v", h)
	}
	h, d = p.Decide(h, Exit{At: d.RearmAt.Add(time.Second), Uptime: time.Second, Code: 2}, noJitter)
	if d.Action != Restart {
		t.Fatalf("after re-arm: %v, want restart", d.Action)
	}
}

func TestManualStartBypassesLimit(t *testing.T) {
	p := pol(Always)
	h := History{FailedAt: t0, Reason: "x", Starts: []time.Time{t0, t0, t0, t0, t0}}
	h = p.Started(h, t0.Add(time.Second), true)
	if !h.FailedAt.IsZero() || len(h.Starts) != 1 {
		t.Fatalf("manual start left %+v", h)
	}
	_, d := p.Decide(h, Exit{At: t0.Add(2 * time.Second), Code: 1}, noJitter)
	if d.Action != Restart {
		t.Fatalf("after a manual start: %v, want restart", d.Action)
	}
}

func TestValidateAndParse(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Defaults()
	bad.MaxBackoff = bad.Backoff / 2
	if err := bad.Validate(); err == nil {
		t.Error("max_backoff < backoff accepted")
	}
	bad = Defaults()
	bad.Jitter = 1.5
	if err := bad.Validate(); err == nil {
		t.Error("jitter 1.5 accepted")
	}
	if m, err := ParseMode(""); err != nil || m != OnFailure {
		t.Errorf("ParseMode(\"\") = %v, %v", m, err)
	}
	if _, err := ParseMode("sometimes"); err == nil {
		t.Error("unknown mode accepted")
	}
}
