//go:build unix

package statedir

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrepareCreatesAPrivateDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", ".corral")
	if err := Prepare(dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(dir)
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Fatalf("made %v %v", st.Mode(), err)
	}
	// Prepared twice: still fine, still private.
	if err := Prepare(dir); err != nil {
		t.Fatal(err)
	}
}

func TestStickyParentIsTrusted(t *testing.T) {
	// /tmp-like: world-writable but sticky, as a shared directory is.
	shared := filepath.Join(t.TempDir(), "shared")
	os.Mkdir(shared, 0o777)
	os.Chmod(shared, os.ModeSticky|0o777)
	if err := Prepare(filepath.Join(shared, "mine", ".corral")); err != nil {
		t.Fatalf("a sticky shared parent was refused: %v", err)
	}
	// Without the sticky bit anyone could rename our directory away.
	open := filepath.Join(t.TempDir(), "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	err := Prepare(filepath.Join(open, ".corral"))
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "chmod go-w "+open) {
		t.Fatalf("a world-writable parent: %v", err)
	}
	if _, serr := os.Lstat(filepath.Join(open, ".corral")); serr == nil {
		t.Fatal("the state directory was created under a parent that was refused")
	}
}

func TestSymlinkedStateDirIsRefusedAndUntouched(t *testing.T) {
	target := t.TempDir()
	os.Chmod(target, 0o755)
	link := filepath.Join(t.TempDir(), ".corral")
	os.Symlink(target, link)
	err := Prepare(link)
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "is a symlink") {
		t.Fatalf("got %v", err)
	}
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o755 {
		t.Fatalf("the symlink's target was chmodded to %v", st.Mode().Perm())
	}
}

func TestForeignOwnerIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another user")
	}
	dir := filepath.Join(t.TempDir(), ".corral")
	os.Mkdir(dir, 0o700)
	os.Chown(dir, 65534, 65534)
	err := Prepare(dir)
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("got %v", err)
	}
	parent := t.TempDir()
	os.Chown(parent, 65534, 65534)
	err = Prepare(filepath.Join(parent, ".corral"))
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "a parent of the state directory") {
		t.Fatalf("got %v", err)
	}
}

func TestOpenFileFollowsNoSymlink(t *testing.T) {
	root := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	os.Symlink(victim, filepath.Join(root, "journal.jsonl"))
	os.Symlink(filepath.Dir(victim), filepath.Join(root, "logs"))
	for _, rel := range []string{"journal.jsonl", "logs/victim"} {
		f, err := OpenFile(root, rel, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err == nil {
			f.WriteString("written through")
			f.Close()
			t.Fatalf("%s: opened through a symlink", rel)
		}
		if !errors.Is(err, ErrUntrusted) {
			t.Fatalf("%s: %v", rel, err)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatalf("the victim was written: %q", b)
	}
	// The fallback path (no openat2) refuses the same.
	for _, rel := range []string{"journal.jsonl", "logs/victim"} {
		if f, err := openPortable(root, rel, os.O_WRONLY|os.O_APPEND, 0); err == nil {
			f.Close()
			t.Fatalf("portable %s: opened through a symlink", rel)
		}
	}
	// A real file opens.
	f, err := OpenFile(root, "real", os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := Refuse(filepath.Join(root, "journal.jsonl")); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("Refuse: %v", err)
	}
	if err := Refuse(filepath.Join(root, "real")); err != nil {
		t.Fatalf("Refuse of a real file: %v", err)
	}
	if _, err := OpenFile(root, "../escape", os.O_RDONLY, 0); err == nil {
		t.Fatal("a path outside the state directory was opened")
	}
}

func TestKeyIsStableAndDistinct(t *testing.T) {
	a, b := Key("/x/.corral"), Key("/x/./.corral")
	if a != b || Key("/y/.corral") == a || !strings.HasPrefix(a, "state-") || len(a) != len("state-")+16 {
		t.Fatalf("keys %s %s %s", a, b, Key("/y/.corral"))
	}
}

// umask 002 with user private groups makes every folder 0775: a parent
// writable only by the user's own private group is trusted, one writable
// by others never.
func TestPrivateGroupWritableParentIsTrusted(t *testing.T) {
	u, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil || g.Name != u.Username {
		t.Skipf("the user's primary group is not a private group named %s", u.Username)
	}
	proj := filepath.Join(t.TempDir(), "proj")
	os.Mkdir(proj, 0o775)
	os.Chmod(proj, 0o775)
	if err := Prepare(filepath.Join(proj, ".corral")); err != nil {
		t.Fatalf("a 0775 folder of the user's private group was refused: %v", err)
	}
	other := filepath.Join(t.TempDir(), "other")
	os.Mkdir(other, 0o777)
	os.Chmod(other, 0o777)
	if err := Prepare(filepath.Join(other, ".corral")); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("a world-writable folder: %v", err)
	}
}
