package service

import "testing"

func TestStateTable(t *testing.T) {
	for _, tc := range []struct {
		from State
		ev   Event
		to   State
	}{
		{Stopped, EvStart, Starting},
		{Stopped, EvExternal, External},
		{Starting, EvReady, Ready},
		{Starting, EvNotReady, Stopping},
		{Starting, EvExited, Stopping},
		{Ready, EvHealthFail, Unhealthy},
		{Unhealthy, EvHealthOK, Ready},
		{Unhealthy, EvHealthDown, Stopping},
		{Ready, EvExited, Stopping},
		{Ready, EvStart, Ready}, // coalesced: no second instance
		{Stopping, EvStart, Stopping},
		{Stopping, EvStopped, Stopped},
		{Stopping, EvRetry, Backoff},
		{Stopping, EvGiveUp, Failed},
		{Stopping, EvStay, Stopped},
		{Backoff, EvStart, Starting},
		{Backoff, EvStop, Stopped},
		{Failed, EvStart, Starting},
		{External, EvStart, External},
		{External, EvStop, Stopped},
		{Failed, EvStopAgain, Stopping},
	} {
		got, err := Next(tc.from, tc.ev)
		if err != nil || got != tc.to {
			t.Errorf("%s --%s--> %s (%v), want %s", tc.from, tc.ev, got, err, tc.to)
		}
	}
	for _, bad := range []struct {
		from State
		ev   Event
	}{
		{Stopped, EvReady}, {Stopped, EvExited}, {Backoff, EvReady}, {Ready, EvStopped}, {External, EvExited},
	} {
		if _, err := Next(bad.from, bad.ev); err == nil {
			t.Errorf("%s --%s--> accepted", bad.from, bad.ev)
		}
	}
	// Every state can be asked to stop and to start.
	for s := range table {
		for _, e := range []Event{EvStart, EvStop} {
			if _, err := Next(s, e); err != nil {
				t.Errorf("state %s rejects %s", s, e)
			}
		}
	}
}
