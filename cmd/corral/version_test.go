package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// buildCorral builds this command into a temporary directory with the given
// go build flags and returns the binary's path.
func buildCorral(t *testing.T, flags ...string) string {
	t.Helper()
	gobin, err := exec.LookPath("go") // go test puts its own GOROOT/bin first in PATH
	if err != nil {
		t.Fatalf("no go command to build corral with: %v", err)
	}
	exe := filepath.Join(t.TempDir(), "corral")
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	args := append([]string{"build", "-o", exe}, flags...)
	cmd := exec.Command(gobin, append(args, ".")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return exe
}

// versionOutputs runs exe version and exe --version, checks that they print
// the same line, and returns it.
func versionOutputs(t *testing.T, exe string) string {
	t.Helper()
	var lines []string
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(exe, arg).CombinedOutput()
		if err != nil {
			t.Fatalf("corral %s: %v\n%s", arg, err, out)
		}
		lines = append(lines, string(out))
	}
	if lines[0] != lines[1] {
		t.Errorf("corral version printed %q, corral --version %q: want the same", lines[0], lines[1])
	}
	return lines[0]
}

// The release build's ldflags (.goreleaser.yaml) stamp version, commit and
// date; both corral version and corral --version print them.
func TestVersionStampedByLdflags(t *testing.T) {
	const (
		ver  = "0.1.0-SNAPSHOT-0123abc"
		rev  = "0123abcdef0123456789abcdef0123456789abcd"
		when = "2026-01-02T03:04:05Z"
	)
	exe := buildCorral(t, "-trimpath", "-ldflags", "-s -w -X main.version="+ver+" -X main.commit="+rev+" -X main.date="+when)
	want := "corral " + ver + " (commit " + rev + ", built " + when + ", " + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if got := versionOutputs(t, exe); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// Without ldflags and without VCS information (go install …@latest, or
// -buildvcs=false as CI builds) the version is "dev" (or the module's
// version), never empty, and no commit is claimed.
func TestVersionWithoutLdflags(t *testing.T) {
	exe := buildCorral(t, "-buildvcs=false")
	want := "corral dev (" + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if got := versionOutputs(t, exe); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// A go build in a git checkout records vcs.revision: corral names it (and
// the pseudo-version Go derives from it) without ldflags.
func TestVersionFromVCS(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git: a build records no VCS information")
	}
	head, err := exec.Command(git, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout with a commit (%v): a build records no VCS information", err)
	}
	exe := buildCorral(t, "-buildvcs=true")
	got := versionOutputs(t, exe)
	if !strings.HasPrefix(got, "corral v") || !strings.Contains(got, " (commit "+strings.TrimSpace(string(head))) ||
		!strings.Contains(got, ", built ") {
		t.Errorf("got %q, want corral v<pseudo-version> (commit %s[-dirty], built <date>, …)", got, strings.TrimSpace(string(head)))
	}
}

// versionLine leaves out what it does not know and never prints an empty
// version.
func TestVersionLine(t *testing.T) {
	saved := [3]string{version, commit, date}
	defer func() { version, commit, date = saved[0], saved[1], saved[2] }()
	tail := runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")"

	version, commit, date = "1.2.3", "abc", "2026-01-02T03:04:05Z"
	if got, want := versionLine(), "1.2.3 (commit abc, built 2026-01-02T03:04:05Z, "+tail; got != want {
		t.Errorf("versionLine() = %q, want %q", got, want)
	}
	version, commit, date = "1.2.3", "abc", ""
	if got, want := versionLine(), "1.2.3 (commit abc, "+tail; got != want {
		t.Errorf("versionLine() = %q, want %q", got, want)
	}
	version, commit, date = "", "", ""
	if v := buildVersion(); v == "" {
		t.Error("buildVersion() is empty without ldflags")
	}
	if got := versionLine(); strings.HasPrefix(got, " ") || !strings.HasSuffix(got, tail) {
		t.Errorf("versionLine() = %q without ldflags", got)
	}
}
