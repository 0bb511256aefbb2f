package main

import (
	"os"
	"testing"

	"github.com/corral-sh/corral/internal/testproc"
)

func TestMain(m *testing.M) {
	testproc.Main()
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
	} {
		if got := run(tc.args); got != tc.want {
			t.Errorf("corral %v exited %d, want %d", tc.args, got, tc.want)
		}
	}
}
