package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/corral-sh/corral/client"
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

// The daemon's error codes map to the same exit codes as the CLI's own
// errors, through the wrapping the commands add.
func TestExitCodesOfDaemonErrors(t *testing.T) {
	daemonErr := func(code string) error { return &client.Error{Message: "m", Code: code, Status: 400} }
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("start a: %w", daemonErr(client.CodeUnknownService)), exitUsage},
		{fmt.Errorf("restart a: %w", daemonErr(client.CodeBadRequest)), exitUsage},
		{fmt.Errorf("stop a: %w", daemonErr(client.CodeStopIncomplete)), exitLeft},
		{daemonErr(client.CodeNotReady), exitFailure},
		{daemonErr(client.CodeTimeout), exitFailure},
		{daemonErr(client.CodeBadConfig), exitFailure},
		{fmt.Errorf("client: POST /v1/services/a/ensure: %w", context.DeadlineExceeded), exitFailure},
		{fmt.Errorf("%w on /x", client.ErrNoDaemon), exitNoDaemon},
		{fmt.Errorf("start a: %w", daemonErr(client.CodeLeftover)), exitLeft},
		{fmt.Errorf("%w on /x: owned by uid 0", client.ErrPermission), exitDenied},
		{fmt.Errorf("%w: served by uid 65534", client.ErrUntrusted), exitDenied},
		// up: several services; the most serious class wins.
		{serviceErrors{{"a", daemonErr(client.CodeNotReady)}, {"b", daemonErr(client.CodeUnknownService)}}, exitUsage},
		{serviceErrors{{"a", daemonErr(client.CodeBadRequest)}, {"b", daemonErr(client.CodeStopIncomplete)}}, exitLeft},
		{errors.New("other"), exitFailure},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("%v exits %d, want %d", tc.err, got, tc.want)
		}
	}
}
