package restart

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func noJitter() float64 { return 0 } // no shortening

const ms = time.Millisecond

func pol(mode Mode) Policy {
	return Policy{Mode: mode, Backoff: time.Second, MaxBackoff: 8 * time.Second, Burst: 5, Window: time.Minute, StableAfter: 30 * time.Second}
}

// run starts an instance at *now, ends it with exit (At and Uptime filled in
// from up) and returns the decision; *now moves to the restart.
func run(p Policy, h *History, now *time.Time, up time.Duration, exit Exit) Decision {
	*h = p.Started(*h, *now, false)
	exit.At, exit.Uptime = now.Add(up), up
	var d Decision
	*h, d = p.Decide(*h, exit, noJitter)
	*now = exit.At.Add(d.Delay)
	return d
}

// naive is the delay of the old rule, which doubled from the first failure
// whether or not the instances had come up: Backoff·2^(n-1), capped.
func naive(p Policy, n int) time.Duration {
	d := p.Backoff << (n - 1)
	return min(d, p.MaxBackoff)
}

func TestDefaults(t *testing.T) {
	p := Defaults()
	want := Policy{Mode: OnFailure, Backoff: 100 * ms, MaxBackoff: 30 * time.Second, Jitter: 0.2, Burst: 5, Window: 10 * time.Minute, StableAfter: 10 * time.Second}
	if p != want {
		t.Fatalf("Defaults() = %+v, want %+v", p, want)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDecideByModeAndExit(t *testing.T) {
	crash := Exit{At: t0, Uptime: time.Second, Code: 1}
	clean := Exit{At: t0, Uptime: time.Second, Code: 0}
	cleanUp := Exit{At: t0, Uptime: time.Second, Code: 0, Established: true}
	killed := Exit{At: t0, Uptime: time.Second, Signaled: true}
	sick := Exit{At: t0, Uptime: time.Second, Unhealthy: true}
	upCrash := Exit{At: t0, Uptime: time.Second, Code: 1, Established: true}
	asked := Exit{At: t0, Uptime: time.Second, Code: 1, Requested: true}
	for _, tc := range []struct {
		mode Mode
		exit Exit
		want Action
	}{
		{Always, crash, Restart},
		{Always, clean, Restart},
		{Always, cleanUp, Restart},
		{Always, killed, Restart},
		{Always, asked, Stay},
		{OnFailure, crash, Restart},
		{OnFailure, upCrash, Restart},
		{OnFailure, clean, Stay},
		{OnFailure, cleanUp, Stay},
		{OnFailure, killed, Restart},
		{OnFailure, sick, Restart},
		{OnFailure, asked, Stay},
		{Never, crash, Stay},
		{Never, upCrash, Stay},
		{Never, sick, Stay},
	} {
		_, d := pol(tc.mode).Decide(History{}, tc.exit, noJitter)
		if d.Action != tc.want {
			t.Errorf("%s after %+v: %v (%s), want %v", tc.mode, tc.exit, d.Action, d.Reason, tc.want)
		}
	}
}

func TestFirstCrashOfEstablishedInstanceWaitsBackoff(t *testing.T) {
	p := Defaults()
	for _, tc := range []struct {
		name string
		h    History
	}{
		{"fresh history", History{}},
		{"after quick failures", History{Consecutive: 4}},
	} {
		h, d := p.Decide(tc.h, Exit{At: t0, Uptime: 1500 * ms, Code: 1, Established: true}, noJitter)
		if d.Action != Restart || d.Delay != p.Backoff || h.Consecutive != 1 {
			t.Errorf("%s: %v after %v, consecutive %d; want restart after %v, consecutive 1", tc.name, d.Action, d.Delay, h.Consecutive, p.Backoff)
		}
	}
}

// The target: a server that needs 1.0s to become ready is ready again
// ≤ 1.1s after its first and its third crash. The negative control is the old
// rule, which would have waited Backoff·2^2 = 400ms on the third.
func TestConsecutiveCrashesOfEstablishedInstancesEachWaitBackoff(t *testing.T) {
	const readyIn = time.Second
	p := Defaults()
	var h History
	now := t0
	for n := 1; n <= 3; n++ {
		d := run(p, &h, &now, readyIn+500*ms, Exit{Code: 1, Established: true})
		if d.Action != Restart || d.Delay != p.Backoff {
			t.Fatalf("crash %d: %v after %v, want restart after %v", n, d.Action, d.Delay, p.Backoff)
		}
		if crashToReady := d.Delay + readyIn; crashToReady > 1100*ms {
			t.Errorf("crash %d: crash → ready %v, want ≤ 1.1s", n, crashToReady)
		}
		if n == 3 {
			if old := naive(p, n); old != 400*ms || d.Delay >= old || old+readyIn <= 1100*ms {
				t.Errorf("negative control: naive doubling gives %v on crash 3 (want 400ms, missing the target); new %v", old, d.Delay)
			}
		}
	}
}

func TestQuickFailuresDoubleUpToMaxBackoff(t *testing.T) {
	p := Defaults()
	p.Burst = 0 // the start limit has its own test
	var h History
	now := t0
	var got []time.Duration
	for n := 1; n <= 12; n++ {
		// Never ready (or no readiness probe) and down before StableAfter.
		d := run(p, &h, &now, 2*time.Second, Exit{Code: 1})
		got = append(got, d.Delay)
		if d.Delay != naive(p, n) {
			t.Errorf("quick failure %d: %v, want %v", n, d.Delay, naive(p, n))
		}
	}
	want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v first", got, want)
		}
	}
	if last := got[len(got)-1]; last != p.MaxBackoff {
		t.Fatalf("delay after 12 quick failures %v, want the cap %v", last, p.MaxBackoff)
	}
}

func TestStartedSuccessfullyResetsTheBackoff(t *testing.T) {
	for _, tc := range []struct {
		name        string
		stableAfter time.Duration
		exit        Exit
		want        time.Duration // after 3 quick failures (next would be 800ms)
		consecutive int
	}{
		{"crash before stable_after", 10 * time.Second, Exit{Uptime: 9 * time.Second, Code: 1}, 800 * ms, 4},
		{"crash at stable_after", 10 * time.Second, Exit{Uptime: 10 * time.Second, Code: 1}, 100 * ms, 1},
		{"crash long after stable_after", 10 * time.Second, Exit{Uptime: time.Hour, Signaled: true}, 100 * ms, 1},
		{"established, quick crash", 10 * time.Second, Exit{Uptime: time.Second, Code: 1, Established: true}, 100 * ms, 1},
		{"stable_after 0: uptime never resets", 0, Exit{Uptime: time.Hour, Code: 1}, 800 * ms, 4},
		{"stable_after 0: established resets", 0, Exit{Uptime: time.Second, Code: 1, Established: true}, 100 * ms, 1},
		{"probe failure after stable run", 10 * time.Second, Exit{Uptime: time.Minute, Unhealthy: true}, 100 * ms, 1},
	} {
		p := Defaults()
		p.StableAfter = tc.stableAfter
		tc.exit.At = t0
		h, d := p.Decide(History{Consecutive: 3}, tc.exit, noJitter)
		if d.Action != Restart || d.Delay != tc.want || h.Consecutive != tc.consecutive {
			t.Errorf("%s: %v after %v, consecutive %d; want restart after %v, consecutive %d",
				tc.name, d.Action, d.Delay, h.Consecutive, tc.want, tc.consecutive)
		}
	}
}

func TestCleanExitWaitsBackoff(t *testing.T) {
	p := Defaults()
	p.Mode = Always
	for _, tc := range []struct {
		name        string
		exit        Exit
		consecutive int
	}{
		{"quick clean exit is not counted", Exit{At: t0, Uptime: time.Second}, 3},
		{"clean exit after a successful start resets", Exit{At: t0, Uptime: time.Second, Established: true}, 0},
	} {
		h, d := p.Decide(History{Consecutive: 3}, tc.exit, noJitter)
		if d.Action != Restart || d.Delay != p.Backoff || h.Consecutive != tc.consecutive {
			t.Errorf("%s: %v after %v, consecutive %d; want restart after %v, consecutive %d",
				tc.name, d.Action, d.Delay, h.Consecutive, p.Backoff, tc.consecutive)
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
		// Consecutive becomes 3: base 4s, shortened by up to 20%, never
		// longer than the delay the policy promises.
		if d.Delay < 3200*ms || d.Delay > 4000*ms {
			t.Errorf("jitter %v gave %v, outside [3.2s, 4s]", j, d.Delay)
		}
	}
}

func TestDelayIsNeverNegative(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
		h    History
	}{
		// Validate rejects jitter ≥ 1, but Decide must not trust it.
		{"jitter beyond 1", Policy{Mode: Always, Backoff: 100 * ms, MaxBackoff: time.Second, Jitter: 3}, History{}},
		{"huge cap, long streak", Policy{Mode: Always, Backoff: 100 * ms, MaxBackoff: time.Duration(1<<63 - 1), Jitter: 0.2}, History{Consecutive: 200}},
	} {
		_, d := tc.p.Decide(tc.h, Exit{At: t0, Code: 1}, func() float64 { return 0 })
		if d.Action != Restart || d.Delay < 0 {
			t.Errorf("%s: %v after %v", tc.name, d.Action, d.Delay)
		}
	}
}

func TestStartLimitFailsAndRearms(t *testing.T) {
	for _, established := range []bool{false, true} {
		p := pol(Always)
		var h History
		var d Decision
		now := t0
		for i := 0; i < p.Burst; i++ {
			h = p.Started(h, now, false)
			now = now.Add(time.Second)
			h, d = p.Decide(h, Exit{At: now, Uptime: time.Second, Code: 2, Established: established}, noJitter)
			if i < p.Burst-1 && d.Action != Restart {
				t.Fatalf("established %v, start %d: %v, want restart", established, i+1, d.Action)
			}
		}
		if d.Action != Fail {
			t.Fatalf("established %v: after %d starts in %v: %v, want fail", established, p.Burst, p.Window, d.Action)
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
}

func TestCauseIsTheReason(t *testing.T) {
	const notReady = "not ready: http://127.0.0.1:7860/: connection refused"
	const runaway = "runaway: 80 processes > limit 64"
	for _, tc := range []struct {
		exit Exit
		want string
	}{
		{Exit{Unhealthy: true, Cause: notReady}, notReady},
		{Exit{Signaled: true, Cause: runaway}, runaway},
		{Exit{Code: 1, Cause: "custom"}, "custom"},
		{Exit{Unhealthy: true}, "ended: liveness probe failed"},
		{Exit{Signaled: true}, "killed by a signal"},
		{Exit{Code: 7}, "exited with status 7"},
	} {
		tc.exit.At = t0
		_, d := pol(OnFailure).Decide(History{}, tc.exit, noJitter)
		if d.Action != Restart || d.Reason != tc.want {
			t.Errorf("%+v: %v %q, want restart %q", tc.exit, d.Action, d.Reason, tc.want)
		}
		if strings.Contains(d.Reason, "health probe") {
			t.Errorf("%+v: reason %q still blames the health probe", tc.exit, d.Reason)
		}
	}
	// The start limit quotes the cause as the last exit.
	p := pol(OnFailure)
	h := History{Starts: []time.Time{t0, t0, t0, t0, t0}}
	_, d := p.Decide(h, Exit{At: t0.Add(time.Second), Unhealthy: true, Cause: notReady}, noJitter)
	if d.Action != Fail || !strings.HasSuffix(d.Reason, "last exit: "+notReady) {
		t.Errorf("start limit: %v %q, want fail quoting the cause", d.Action, d.Reason)
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
