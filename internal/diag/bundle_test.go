package diag

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBreachStormYieldsOneBundlePerCooldown(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	b := &Bundler{Dir: t.TempDir(), Cooldown: 5 * time.Second, Now: func() time.Time { return now }}
	written := 0
	// 50 breaches in 10 s of (fake) time, 200 ms apart.
	for i := 0; i < 50; i++ {
		_, skipped, err := b.Write("runaway-webui-processes", false, map[string][]byte{"a.txt": []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		if !skipped {
			written++
		}
		now = now.Add(200 * time.Millisecond)
	}
	if written != 2 {
		t.Fatalf("%d bundles for 50 breaches over 10 s with a 5 s cool-down, want 2", written)
	}
	// Another reason is not held back by the first.
	if _, skipped, _ := b.Write("runaway-other", false, nil); skipped {
		t.Fatal("a different reason was rate-limited")
	}
	if _, skipped, _ := b.Write("runaway-webui-processes", true, nil); skipped {
		t.Fatal("a forced bundle (corral bundle) was rate-limited")
	}
}

func TestStaleLockIsBroken(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	dead.Run()
	os.WriteFile(filepath.Join(dir, ".lock"), []byte(strconv.Itoa(dead.Process.Pid)), 0o600)
	b := &Bundler{Dir: dir, Cooldown: time.Minute}
	path, _, err := b.Write("manual", true, map[string][]byte{"status.json": []byte(`{}`)})
	if err != nil {
		t.Fatalf("a stale lock blocked the bundle: %v", err)
	}
	f, _ := os.Open(path)
	gz, _ := gzip.NewReader(f)
	h, err := tar.NewReader(gz).Next()
	if err != nil || h.Name != "status.json" {
		t.Fatalf("bundle content: %v %v", h, err)
	}
	// A live holder (ourselves) is respected.
	os.WriteFile(filepath.Join(dir, ".lock"), []byte(strconv.Itoa(os.Getpid())), 0o600)
	if _, _, err := b.Write("manual", true, nil); err != ErrBusy {
		t.Fatalf("a live lock holder was ignored: %v", err)
	}
}

func TestRedact(t *testing.T) {
	in := "env = { HF_TOKEN = \"hf_abc\", COMMANDLINE_ARGS = \"--api\", DB_PASSWORD='x' }\nOPENAI_API_KEY=sk-123\n"
	out := Redact(in)
	for _, secret := range []string{"hf_abc", "sk-123", "'x'"} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %q survived: %s", secret, out)
		}
	}
	if !strings.Contains(out, `COMMANDLINE_ARGS = "--api"`) {
		t.Errorf("a harmless value was redacted: %s", out)
	}
}
