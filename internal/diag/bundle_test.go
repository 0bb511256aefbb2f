package diag

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
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

// readBundle returns the files of a bundle by name.
func readBundle(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name], err = io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A bundle built the way the supervisor builds one, with secrets in the
// configuration, the status, the events, a journal excerpt, the logs, the
// daemon log, the member list, the port owners and an environment: no file
// of the archive holds any of them, and the structured files still parse.
func TestBundleHoldsNoSecret(t *testing.T) {
	const (
		hfToken  = "hf_QeT7xLmN2pRs9VbWc4YdZa6KjH8gFuEi"
		openai   = "sk-proj-Zk3Lq9Vw2Nx7Rb5Tc1Md8Pf4"
		civitai  = "7b3e9f04c2a1d8e65f0b9c3a7d2e4f18" // under a name that says nothing
		gradioPw = "Tr0ub4dor-3"
		apiAuth  = "apiuser:ap1Passw0rd"
		plain    = "plainHfValue42" // after --hf-token: secret only by position
		urlPw    = "urlPassw0rd"
		bearer   = "bearerTok3n99"
	)
	secrets := []string{hfToken, openai, civitai, gradioPw, apiAuth, "ap1Passw0rd", plain, urlPw, bearer}
	argv := []string{"python", "launch.py", "--api", "--gradio-auth", "admin:" + gradioPw, "--api-auth=" + apiAuth,
		"--hf-token", plain, "--api-key=" + openai, "--port", "7860", "--listen", "--keep-alive", "5", "--xformers"}
	cmdline := strings.Join(argv, " ")

	config := fmt.Sprintf(`# webui with every kind of secret
[services.webui]
preset = "a1111"
shell = "bash webui.sh --hf-token %s"
dir = "/srv/webui"
env = { COMMANDLINE_ARGS = "--api --gradio-auth admin:%s --port 7860", HF_TOKEN = "%s", CIVITAI = "%s" }
profiles = { guarded = ["--medvram-sdxl", "--api-auth", "%s"] }
health = { http = "http://admin:%s@127.0.0.1:7860/sdapi/v1/options", interval = "10s" }

[services.proxy]
command = ["caddy", "reverse-proxy", "--from", ":8080", "--header-up", "Authorization: Bearer %s", "--api-key", "%s"]
`, plain, gradioPw, hfToken, civitai, apiAuth, urlPw, bearer, openai)
	status, _ := json.MarshalIndent([]map[string]any{{
		"name": "webui", "state": "running", "pid": 4242, "reason": "started with " + cmdline,
		"members": []map[string]any{{"pid": 4242, "ppid": 1, "cmdline": argv, "rss": 123}},
	}}, "", "  ")
	var events bytes.Buffer
	for _, e := range []map[string]any{
		{"seq": 1, "kind": "spawn", "service": "webui", "message": "spawned " + cmdline, "cmdline": argv},
		{"seq": 2, "kind": "health", "service": "webui", "message": "GET http://admin:" + urlPw + "@127.0.0.1:7860/ failed",
			"fields": map[string]string{"token": hfToken, "env": "CIVITAI=" + civitai}},
	} {
		b, _ := json.Marshal(e)
		events.Write(append(b, '\n'))
	}
	journal := `{"seq":7,"kind":"spawn","service":"webui","cmdline":` + string(must(json.Marshal(argv))) + `}` + "\n" +
		"a torn line --gradio-auth admin:" + gradioPw + "\n"
	files := map[string][]byte{
		"corral.toml":          []byte(config),
		"corral.redacted.toml": []byte(Redact(config)), // what the supervisor passes today: redacted twice
		"status.json":          status,
		"events.jsonl":         events.Bytes(),
		"journal.jsonl":        []byte(journal),
		"logs/webui.txt": []byte("2024-05-01T10:00:00Z stdout Launching Web UI with arguments: " + strings.Join(argv[2:], " ") + "\n" +
			"2024-05-01T10:00:01Z stderr huggingface_hub: using token " + hfToken + "\n" +
			"2024-05-01T10:00:02Z stderr curl -H 'Authorization: Bearer " + bearer + "' https://civitai.com/api/download/models/1?token=" + civitai + "\n"),
		"daemon.log":  []byte("corral: exec " + cmdline + "\nenv HF_TOKEN=" + hfToken + " CIVITAI=" + civitai + "\n"),
		"members.txt": []byte("webui: running (started) instance i1, 1 processes, 1 MiB\n  4242 " + cmdline + "\n"),
		"ports.json":  must(json.MarshalIndent(map[string][]string{"webui:7860": {"pid 4242 (" + cmdline + ") service \"webui\""}}, "", "  ")),
		"env.txt":     []byte("HUGGING_FACE_HUB_TOKEN=" + hfToken + "\nCIVITAI=" + civitai + "\nOPENAI_API_KEY=" + openai + "\nPORT=7860\n"),
		"broken.toml": []byte("this is [not toml\nHF_TOKEN = \"" + hfToken + "\"\ncommand = [\"x\", \"--hf-token\", \"" + plain + "\"\n"),
		"broken.json": []byte(`{"token": "` + hfToken + `", "cmdline": ["--hf-token", "` + plain + `"`),
	}
	orig := map[string]string{}
	for n, b := range files {
		orig[n] = string(b)
	}
	// Every secret is really in the input, or the test proves nothing.
	all := strings.Join(func() (v []string) {
		for _, b := range orig {
			v = append(v, b)
		}
		return
	}(), "\n")
	for _, sec := range secrets {
		if !strings.Contains(all, sec) {
			t.Fatalf("test input lacks %q", sec)
		}
	}

	b := &Bundler{Dir: t.TempDir(), Cooldown: time.Minute}
	path, _, err := b.Write("manual", true, files)
	if err != nil {
		t.Fatal(err)
	}
	got := readBundle(t, path)
	if len(got) != len(files) {
		t.Fatalf("bundle has %d files, want %d", len(got), len(files))
	}
	for name, body := range got {
		for _, sec := range secrets {
			if bytes.Contains(body, []byte(sec)) {
				t.Errorf("%s holds secret %q:\n%s", name, sec, body)
			}
		}
		switch {
		case strings.HasSuffix(name, ".json") && name != "broken.json":
			if !json.Valid(body) {
				t.Errorf("%s is no longer valid JSON:\n%s", name, body)
			}
		case strings.HasSuffix(name, ".jsonl"):
			for _, l := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
				if bytes.HasPrefix(l, []byte("{")) && !json.Valid(l) {
					t.Errorf("%s: a line is no longer valid JSON: %s", name, l)
				}
			}
		case strings.HasSuffix(name, ".toml") && name != "broken.toml":
			var m map[string]any
			if _, err := toml.Decode(string(body), &m); err != nil {
				t.Errorf("%s is no longer valid TOML: %v\n%s", name, err, body)
			}
		}
	}
	// What a reader needs is still there.
	for name, want := range map[string]string{
		"corral.toml":    "--port 7860",
		"status.json":    `"--keep-alive"`,
		"members.txt":    "--listen --keep-alive 5 --xformers",
		"logs/webui.txt": "--gradio-auth [redacted]",
		"env.txt":        "PORT=7860",
		"events.jsonl":   `"kind":"spawn"`,
	} {
		if !bytes.Contains(got[name], []byte(want)) {
			t.Errorf("%s lost %q:\n%s", name, want, got[name])
		}
	}
	if !bytes.Equal(got["corral.toml"], got["corral.redacted.toml"]) {
		t.Errorf("a configuration redacted twice differs from one redacted once:\n%s\n---\n%s", got["corral.toml"], got["corral.redacted.toml"])
	}
	for n, b := range files {
		if string(b) != orig[n] {
			t.Errorf("Write changed the caller's %s", n)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
