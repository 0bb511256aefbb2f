package gpu

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	u, err := Parse([]byte("4242, 1024\n4243, [N/A]\n4242, 512\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if u[4242] != 1536<<20 || u[4243] != 0 || len(u) != 2 {
		t.Fatalf("got %v", u)
	}
	if b, n := u.Sum([]int{4242, 4243, 1}); b != 1536<<20 || n != 2 {
		t.Fatalf("sum %d over %d", b, n)
	}
	if u, err := Parse([]byte("No running processes found\n")); err != nil || len(u) != 0 {
		t.Fatalf("no processes: %v %v", u, err)
	}
	for _, bad := range []string{"garbage\n", "x, 12\n", "-3, 12\n"} {
		if _, err := Parse([]byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "gpu: nvidia-smi line 1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// A stand-in nvidia-smi: a shell script that checks it was asked the
// query and counts its runs in a file.
func fakeSMI(t *testing.T, body string) (path, runs string) {
	if runtime.GOOS == "windows" {
		t.Skip("the stand-in nvidia-smi is a shell script")
	}
	dir := t.TempDir()
	runs = filepath.Join(dir, "runs")
	path = filepath.Join(dir, "nvidia-smi")
	script := "#!/bin/sh\necho run >> " + runs + "\n" +
		"[ \"$1 $2\" = \"" + strings.Join(Query, " ") + "\" ] || { echo \"bad args: $*\" >&2; exit 9; }\n" + body
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, runs
}

func TestReaderCachesWithinTTL(t *testing.T) {
	path, runs := fakeSMI(t, "echo '10, 100'\n")
	now := time.Unix(1000, 0)
	r := &Reader{Path: path, TTL: 2 * time.Second, Now: func() time.Time { return now }}
	for i := 0; i < 3; i++ {
		u, err := r.Usage(context.Background())
		if err != nil || u[10] != 100<<20 {
			t.Fatalf("usage %v %v", u, err)
		}
	}
	now = now.Add(3 * time.Second)
	if _, err := r.Usage(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(runs)
	if n := strings.Count(string(b), "run"); n != 2 {
		t.Fatalf("nvidia-smi ran %d times, want 2 (once per TTL)", n)
	}
}

func TestReaderReportsFailures(t *testing.T) {
	path, _ := fakeSMI(t, "echo 'Failed to initialize NVML: Driver/library version mismatch' >&2; exit 18\n")
	_, err := (&Reader{Path: path}).Usage(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Driver/library version mismatch") {
		t.Fatalf("got %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := (&Reader{}).Usage(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("without nvidia-smi: %v", err)
	}
}

// Answers in the shapes nvidia-smi gives to Query (testdata/*.txt, written
// from its documented CSV output; no GPU was at hand to record them): two
// processes, one process on two GPUs, MIG and WSL2, where per-process
// memory is not reported ([N/A], [Not Supported]), an idle GPU (no line)
// and an old driver's sentence for none.
func TestParseRecordedOutputs(t *testing.T) {
	for file, want := range map[string]Usage{
		"r535-two-processes.txt":        {3187: 10734 << 20, 3201: 2048 << 20},
		"r550-one-process-two-gpus.txt": {21877: 2 * 6543 << 20},
		"mig-no-per-process-memory.txt": {4122: 0, 4180: 0},
		"wsl2-not-supported.txt":        {911: 0},
		"idle-no-processes.txt":         {},
		"r390-no-processes.txt":         {},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(b)
		if err != nil || len(got) != len(want) {
			t.Errorf("%s: %v %v, want %v", file, got, err, want)
			continue
		}
		for pid, b := range want {
			if g, ok := got[pid]; !ok || g != b {
				t.Errorf("%s: pid %d: %d (listed %v), want %d", file, pid, g, ok, b)
			}
		}
	}
}

// On a machine with NVIDIA's tools, the real nvidia-smi's answer parses
// (whatever runs on the GPU); elsewhere there is nothing to ask.
func TestRealNvidiaSMI(t *testing.T) {
	if _, err := exec.LookPath("nvidia-smi"); err != nil {
		t.Skip("no nvidia-smi here (no NVIDIA GPU or driver): the parsing is tested on the shapes in testdata")
	}
	u, err := (&Reader{}).Usage(context.Background())
	if err != nil {
		t.Fatalf("the real nvidia-smi: %v", err)
	}
	t.Logf("%d processes hold GPU memory", len(u))
}
