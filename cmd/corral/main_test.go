package main

import (
	"os"
	"testing"

	"github.com/corral-sh/corral/internal/testproc"
)

// asCorral makes the test binary act as the corral binary, so end-to-end
// tests drive the same (race-instrumented) code as `go build` would produce.
const asCorral = "CORRAL_TEST_AS_CORRAL"

func TestMain(m *testing.M) {
	testproc.Main()
	if os.Getenv(asCorral) == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"version"}, exitOK},
		{[]string{"demo", "--containment", "pgroup"}, exitOK},
		{[]string{"demo", "--containment", "nonsense"}, exitUsage},
		{[]string{"version", "--no-such-flag"}, exitUsage},
		{[]string{"no-such-command"}, exitUsage},
		{[]string{"status", "--state-dir", t.TempDir()}, exitNoDaemon},
		{[]string{"ensure"}, exitUsage},
	} {
		if got := run(tc.args); got != tc.want {
			t.Errorf("corral %v exited %d, want %d", tc.args, got, tc.want)
		}
	}
}
