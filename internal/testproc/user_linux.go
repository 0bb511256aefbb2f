package testproc

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
)

// TB is what User needs of a test (testing.TB has it).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
}

// TestUser is a system user made for one test.
type TestUser struct {
	Name     string
	UID, GID int
	Home     string
}

// User creates a system user for the test (useradd -r corral-t-XXXX, with
// a home directory) and removes it, and its home, when the test ends.
// Without root, or without useradd, the test is skipped with the reason.
func User(t TB) TestUser {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to create a second user (useradd) and to run a service as it (corral refuses user = without root)")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skipf("useradd is not installed (Debian: passwd)")
	}
	var b [4]byte
	rand.Read(b[:])
	name := "corral-t-" + hex.EncodeToString(b[:])
	home, err := os.MkdirTemp("", name+"-home-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	os.Remove(home) // useradd -m makes it
	if out, err := exec.Command("useradd", "-r", "-m", "-d", home, "-s", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", "-r", "-f", name).CombinedOutput(); err != nil && !strings.Contains(string(out), "not found") {
			t.Logf("userdel %s: %v: %s", name, err, out)
		}
		os.RemoveAll(home)
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("the new user %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return TestUser{Name: name, UID: uid, GID: gid, Home: u.HomeDir}
}

// Status returns the fields of /proc/PID/status (Uid, Gid, Groups, ...).
func Status(pid int) map[string]string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return out
}

// Environ returns the environment of pid as it started.
func Environ(pid int) map[string]string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}

// OwnedBy lists the live processes whose real uid is uid.
func OwnedBy(uid int) []int {
	var out []int
	for _, pid := range allPIDs() {
		st := Status(pid)
		if f := strings.Fields(st["Uid"]); len(f) > 0 && f[0] == strconv.Itoa(uid) && !strings.HasPrefix(st["State"], "Z") {
			out = append(out, pid)
		}
	}
	return out
}

// Nice is the nice value of pid (field 19 of /proc/PID/stat).
func Nice(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 17 {
		return 0, false
	}
	n, err := strconv.Atoi(f[16]) // field 19; f[0] is field 3
	return n, err == nil
}
