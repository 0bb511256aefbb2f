package service

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Arguments given to cmd.exe, or to a batch file found without its
// extension, are quoted for cmd.exe: & must not start a second command.
// The negative control is Go's own escaping, which leaves & bare.
func TestCommandQuotesForCmd(t *testing.T) {
	// Not t.TempDir: under wine, deleting a batch file cmd.exe just ran
	// fails ("Invalid function"), which would fail the test after it passed.
	dir, err := os.MkdirTemp("", "corral-cmdquote-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bat := filepath.Join(dir, "show.bat")
	if err := os.WriteFile(bat, []byte("@echo ARG1=[%1]\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	evil := "x&echo.INJECTED" // no space: Go quotes an argument with one
	run := func(cmd *exec.Cmd) string {
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("%v: %v", cmd.Args, err)
		}
		return string(out)
	}
	if out := run(exec.Command("cmd.exe", "/c", bat, evil)); !strings.Contains(out, "INJECTED") {
		t.Skipf("Go's own escaping did not let & through here (%q): the control shows nothing", out)
	}
	for _, argv := range [][]string{
		{"cmd.exe", "/c", bat, evil},
		{"C:\\Windows\\System32\\cmd.exe", "/c", bat, evil},
		{strings.TrimSuffix(bat, ".bat"), evil}, // found through PATHEXT
	} {
		out := run(command(argv, false))
		if strings.Contains(out, "\nINJECTED") || strings.HasPrefix(out, "INJECTED") {
			t.Errorf("%q ran a second command:\n%s", argv, out)
		}
		if !strings.Contains(out, `ARG1=["x&echo.INJECTED"]`) {
			t.Errorf("%q: the batch file did not get its argument whole:\n%s", argv, out)
		}
	}
}
