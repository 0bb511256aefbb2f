package redact

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// Real-looking command lines and log lines of the WebUIs corral runs, with
// the exact text a bundle must show.
func TestString(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"a1111 api-auth and gradio-auth",
			"python launch.py --api --api-auth admin:hunter2 --gradio-auth user:pass --port 7860 --listen --xformers",
			"python launch.py --api --api-auth [redacted] --gradio-auth [redacted] --port 7860 --listen --xformers"},
		{"forge hf-token", "python launch.py --hf-token hf_live_notaprefixmatch --cuda-malloc",
			"python launch.py --hf-token [redacted] --cuda-malloc"},
		{"api-key with =", "server --api-key=sk-proj-Ab3dEf6hIj9kLm2nOp5q --port=8000", "server --api-key=[redacted] --port=8000"},
		{"quoted value", `webui.sh --gradio-auth "user:pa ss" --share`, `webui.sh --gradio-auth "[redacted]" --share`},
		{"single-quoted value", `--api-auth 'a:b,c:d' --listen`, `--api-auth '[redacted]' --listen`},
		{"comfyui is left alone", "python main.py --listen 0.0.0.0 --port 8188 --preview-method auto --tls-keyfile /etc/k.pem",
			"python main.py --listen 0.0.0.0 --port 8188 --preview-method auto --tls-keyfile /etc/k.pem"},
		{"keep-alive is not a key", "ollama serve --keep-alive 5 --keep 4", "ollama serve --keep-alive 5 --keep 4"},
		{"token counts are not tokens", "vllm --max-tokens 512 --tokenizer llama --max-num-batched-tokens 8192",
			"vllm --max-tokens 512 --tokenizer llama --max-num-batched-tokens 8192"},
		{"a path to the secret is not the secret", "--gradio-auth-path /srv/auth.txt --password-file pw.txt",
			"--gradio-auth-path /srv/auth.txt --password-file pw.txt"},
		{"switches take no value", "--no-auth --disable-auth-check --listen", "--no-auth --disable-auth-check --listen"},
		{"a value starting with one dash", "--password -x9 --port 1", "--password [redacted] --port 1"},
		{"a flag at the end", "run --api-key", "run --api-key"},
		{"single-dash go-style", "tool -token abc -v", "tool -token [redacted] -v"},
		{"ngrok", "--ngrok 2AbCdEfGh --ngrok-region us", "--ngrok [redacted] --ngrok-region us"},
		{"quoted argv list", `["python", "--hf-token", "X", "--port", "7860"]`, `["python", "--hf-token", "[redacted]", "--port", "7860"]`},
		{"%q list", `["--api-key" "X" "--xformers"]`, `["--api-key" "[redacted]" "--xformers"]`},
		{"url userinfo", "git clone https://user:pass@host/repo.git", "git clone https://user:[redacted]@host/repo.git"},
		{"url password with @", "https://u:p@ss@host/x", "https://u:[redacted]@host/x"},
		{"url with a token as user", "https://ghx1Ab2Cd3Ef4Gh5Ij6Kl7@github.com/o/r", "https://[redacted]@github.com/o/r"},
		{"url with a plain user", "ssh://git@github.com/o/r", "ssh://git@github.com/o/r"},
		{"token in a query", "GET /api/download/models/4384?type=Model&token=0a1b2c&format=SafeTensor",
			"GET /api/download/models/4384?type=Model&token=[redacted]&format=SafeTensor"},
		{"authorization header", "Authorization: Bearer x", "Authorization: Bearer [redacted]"},
		{"basic auth header", `curl -H "Authorization: Basic dXNlcjpwYXNz" http://h/`, `curl -H "Authorization: Basic [redacted]" http://h/`},
		{"bare bearer", "sent Bearer abc.def-ghi to the api", "sent Bearer [redacted] to the api"},
		{"cookie header", "Cookie: session=abc; theme=dark", "Cookie: [redacted]"},
		{"openai key anywhere", "using key sk-Ab3dEf6hIj9kLm2nOp5qRs8t for chat", "using key [redacted] for chat"},
		{"hf token anywhere", "login with hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345", "login with [redacted]"},
		{"github tokens", "ghp_0123456789abcdefghijABCDEFGHIJ github_pat_11ABCDEFG0123456789_abcdefghij",
			"[redacted] [redacted]"},
		{"slack and aws", "xoxb-1234-5678-abcdef AKIAIOSFODNN7EXAMPLE", "[redacted] [redacted]"},
		{"jwt", "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig x", "token=[redacted] x"},
		{"a prefix inside a word is not a token", "risk-assessment-procedures-2024 desk-lamp-ultra-bright-v2",
			"risk-assessment-procedures-2024 desk-lamp-ultra-bright-v2"},
		{"env assignment in a shell string", "HF_TOKEN=abc CIVITAI=3f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c python launch.py",
			"HF_TOKEN=[redacted] CIVITAI=[redacted] python launch.py"},
		{"harmless env assignment", "CUDA_VISIBLE_DEVICES=0 PORT=7860 python x.py", "CUDA_VISIBLE_DEVICES=0 PORT=7860 python x.py"},
		{"argparse dump", "Namespace(api_auth='u:p,u2:p2', hf_token='X', port=7860)",
			"Namespace(api_auth='[redacted]', hf_token='[redacted]', port=7860)"},
		{"json in text", `payload {"api_key": "abc", "steps": 20}`, `payload {"api_key": "[redacted]", "steps": 20}`},
		{"escaped json in text", `{\"password\": \"abc\"}`, `{\"password\": \"[redacted]\"}`},
		{"toml line", `HF_TOKEN = "hf_abc"`, `HF_TOKEN = "[redacted]"`},
		{"hashes in logs stay", "Model hash 1d0c4ebf6ff58a5caecab40fa1406526bca4b5b9 instance 01HV3K2M9X",
			"Model hash 1d0c4ebf6ff58a5caecab40fa1406526bca4b5b9 instance 01HV3K2M9X"},
		{"paths stay", "/home/u/stable-diffusion-webui/models/Stable-diffusion/v1-5-pruned-emaonly.safetensors",
			"/home/u/stable-diffusion-webui/models/Stable-diffusion/v1-5-pruned-emaonly.safetensors"},
		{"pem", "k: -----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- done",
			"k: -----BEGIN RSA PRIVATE KEY-----\n[redacted]\n-----END RSA PRIVATE KEY----- done"},
		{"author is not auth", "GIT_AUTHOR_NAME=bob --autolaunch", "GIT_AUTHOR_NAME=bob --autolaunch"},
		{"empty", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := String(c.in)
			if got != c.want {
				t.Fatalf("String(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
			if again := String(got); again != got {
				t.Fatalf("redacting twice changed %q to %q", got, again)
			}
		})
	}
}

func TestSecretName(t *testing.T) {
	for name, want := range map[string]bool{
		"HUGGING_FACE_HUB_TOKEN": true, "HF_TOKEN": true, "OPENAI_API_KEY": true, "apiKey": true, "HFToken": true,
		"AWS_SECRET_ACCESS_KEY": true, "DB_PASSWORD": true, "MYSQL_PWD": true, "SMTP_PASS": true, "GRADIO_AUTH": true,
		"api-auth": true, "Authorization": true, "session": true, "COOKIE": true, "GOOGLE_APPLICATION_CREDENTIALS": true,
		"PRIVATE_KEY": true, "NotebookApp.token": true, "api_keys": true, "passwd": true, "OAUTH": true,
		"PWD": false, "OLDPWD": false, "PATH": false, "keep-alive": false, "KEYBOARD": false, "tokenizer": false,
		"max-tokens": false, "GIT_AUTHOR_NAME": false, "autolaunch": false, "gradio-auth-path": false,
		"SSH_AUTH_SOCK": false, "TOKEN_COUNT": false, "no-auth": false, "COMMANDLINE_ARGS": false, "CIVITAI": false,
		"port": false, "BYPASS": false, "": false,
	} {
		if got := SecretName(name); got != want {
			t.Errorf("SecretName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestArgv(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"python", "launch.py", "--api", "--api-auth", "u:p", "--gradio-auth", "user:pass", "--port", "7860", "--listen"},
			[]string{"python", "launch.py", "--api", "--api-auth", Mark, "--gradio-auth", Mark, "--port", "7860", "--listen"}},
		{[]string{"python", "launch.py", "--hf-token", "X", "--api-key=sk-abc", "--keep-alive", "5", "--xformers"},
			[]string{"python", "launch.py", "--hf-token", Mark, "--api-key=" + Mark, "--keep-alive", "5", "--xformers"}},
		// The next flag is not the value of a flag that has none.
		{[]string{"x", "--api-key", "--listen"}, []string{"x", "--api-key", "--listen"}},
		{[]string{"x", "--api-key=", "--token", ""}, []string{"x", "--api-key=", "--token", ""}},
		// A shell script and a curl header, element by element.
		{[]string{"bash", "-c", "python launch.py --hf-token X --port 7860"}, []string{"bash", "-c", "python launch.py --hf-token [redacted] --port 7860"}},
		{[]string{"curl", "-H", "Authorization: Bearer x", "https://u:p@h/"}, []string{"curl", "-H", "Authorization: Bearer [redacted]", "https://u:[redacted]@h/"}},
		{[]string{"env", "HF_TOKEN=abc", "python"}, []string{"env", "HF_TOKEN=[redacted]", "python"}},
		{[]string{"/opt/comfy/main.py"}, []string{"/opt/comfy/main.py"}},
		{nil, nil},
	} {
		if got := Argv(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Argv(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
	in := []string{"--hf-token", "X"}
	Argv(in)
	if in[1] != "X" {
		t.Fatal("Argv changed its input")
	}
}

func TestEnv(t *testing.T) {
	got := Env([]string{
		"HUGGING_FACE_HUB_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345",
		"CIVITAI=3f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c", // a token under a harmless name
		"CIVITAI_MIRROR=https://user:pw@mirror/",
		"COMMANDLINE_ARGS=--api --gradio-auth a:b --port 7860",
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"PWD=/home/u/webui",
		"MODEL=sd_xl_base_1.0.safetensors",
		"PIPELINE=StableDiffusionXLPipeline",
		"HF_HUB_CACHE=/home/u/.cache/huggingface/hub",
		"SD_WEBUI_RESTART=0",
		"HF_TOKEN=",
		"notanassignment",
	})
	want := []string{
		"HUGGING_FACE_HUB_TOKEN=[redacted]",
		"CIVITAI=[redacted]",
		"CIVITAI_MIRROR=https://user:[redacted]@mirror/",
		"COMMANDLINE_ARGS=--api --gradio-auth [redacted] --port 7860",
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"PWD=/home/u/webui",
		"MODEL=sd_xl_base_1.0.safetensors",
		"PIPELINE=StableDiffusionXLPipeline",
		"HF_HUB_CACHE=/home/u/.cache/huggingface/hub",
		"SD_WEBUI_RESTART=0",
		"HF_TOKEN=",
		"notanassignment",
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Env: got %q, want %q", got[i], want[i])
		}
	}
	if m := EnvMap(map[string]string{"API_KEY": "x", "A": "1"}); m["API_KEY"] != Mark || m["A"] != "1" {
		t.Errorf("EnvMap: %v", m)
	}
}

func TestJSON(t *testing.T) {
	in := `{
  "name": "webui",
  "members": [{"pid": 7, "cmdline": ["python", "launch.py", "--hf-token", "X", "--port", "7860"]}],
  "api_key": 12345,
  "auth": false,
  "token": null,
  "credentials": {"default": "abc", "n": [1, "two"]},
  "env": {"CIVITAI": "3f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c", "PORT": "7860", "HF_TOKEN": "x"},
  "message": "started with --gradio-auth u:p at https://a:b@h/ <ok> & done",
  "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345": 1
}
`
	out, err := JSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(out) {
		t.Fatalf("not valid JSON:\n%s", out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{`"X"`, "12345", "abc", "two", "3f9a0b", `"x"`, "u:p", "a:b", "hf_AbC"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("%s survived:\n%s", secret, out)
		}
	}
	for _, kept := range []string{`"webui"`, `"7860"`, `"auth": false`, `"token": null`, "<ok> & done", `"pid": 7`} {
		if !strings.Contains(string(out), kept) {
			t.Errorf("%s was lost:\n%s", kept, out)
		}
	}
	if !strings.HasPrefix(string(out), "{\n  \"name\"") || !strings.HasSuffix(string(out), "}\n") {
		t.Errorf("layout or key order not kept:\n%s", out)
	}
	if c, _ := JSON([]byte(`{"a":[1,{"password":"p"}]}`)); string(c) != `{"a":[1,{"password":"[redacted]"}]}` {
		t.Errorf("compact input: %s", c)
	}
	for _, bad := range []string{``, `{`, `{"a":1} {"b":2}`, `[1,]`, strings.Repeat("[", 10002) + strings.Repeat("]", 10002)} {
		if _, err := JSON([]byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "redact: ") {
			t.Errorf("JSON(%.20q): %v", bad, err)
		}
	}
}

func TestJSONLines(t *testing.T) {
	in := "{\"kind\":\"start\",\"message\":\"--api-key sk-Ab3dEf6hIj9kLm2nOp5qRs8t\"}\n\nnot json --hf-token X\r\n{\"fields\":{\"password\":\"p\"}}"
	out := string(JSONLines([]byte(in)))
	want := "{\"kind\":\"start\",\"message\":\"--api-key [redacted]\"}\n\nnot json --hf-token [redacted]\r\n{\"fields\":{\"password\":\"[redacted]\"}}"
	if out != want {
		t.Fatalf("got  %q\nwant %q", out, want)
	}
}

func TestTOML(t *testing.T) {
	in := `# my config
[corral]
containment = "auto"

[services.webui]
preset = "a1111"
shell = "bash webui.sh --hf-token X"
env = { COMMANDLINE_ARGS = "--api --gradio-auth user:pass --port 7860", HF_TOKEN = "hf_abc", CIVITAI = "3f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c" }
profiles = { guarded = ["--medvram-sdxl", "--api-auth", "u:p"] }
health = { http = "http://admin:pw@127.0.0.1:7860/sdapi/v1/options", interval = "10s", failures = 3 }
limits = { processes = 512, memory = "24GiB" }

[services.auth]  # a service may be called auth
command = ["./auth-proxy", "--listen", ":9000", "--secret=s3cr3t"]
autostart = false
`
	out, err := TOML([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), TOMLHeader) {
		t.Errorf("no header:\n%s", out)
	}
	var m map[string]any
	if _, err := toml.Decode(string(out), &m); err != nil {
		t.Fatalf("not valid TOML: %v\n%s", err, out)
	}
	for _, secret := range []string{`"X"`, "user:pass", "hf_abc", "3f9a0b", "u:p", ":pw@", "s3cr3t"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("%s survived:\n%s", secret, out)
		}
	}
	svcs := m["services"].(map[string]any)
	auth := svcs["auth"].(map[string]any)
	if !reflect.DeepEqual(auth["command"], []any{"./auth-proxy", "--listen", ":9000", "--secret=" + Mark}) || auth["autostart"] != false {
		t.Errorf("service auth: %v", auth)
	}
	webui := svcs["webui"].(map[string]any)
	if env := webui["env"].(map[string]any); env["COMMANDLINE_ARGS"] != "--api --gradio-auth [redacted] --port 7860" {
		t.Errorf("env: %v", env)
	}
	if lim := webui["limits"].(map[string]any); lim["processes"] != int64(512) {
		t.Errorf("a number changed type: %#v", lim)
	}
	again, err := TOML(out)
	if err != nil || string(again) != string(out) {
		t.Errorf("redacting twice changed the copy (%v):\n%s", err, again)
	}
	if _, err := TOML([]byte("a = ")); err == nil || !strings.HasPrefix(err.Error(), "redact: ") {
		t.Errorf("bad TOML: %v", err)
	}
}

// The example configuration survives redaction as a valid configuration
// with the same services.
func TestTOMLExample(t *testing.T) {
	src, err := os.ReadFile("../../examples/corral.toml")
	if err != nil {
		t.Skip(err)
	}
	out, err := TOML(src)
	if err != nil {
		t.Fatal(err)
	}
	var before, after map[string]any
	toml.Decode(string(src), &before)
	if _, err := toml.Decode(string(out), &after); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("the example has no secret, yet redaction changed it:\n%s", out)
	}
}

func TestFile(t *testing.T) {
	// A TOML file that does not parse is redacted as text and says so.
	bad := []byte("env = { HF_TOKEN = \"hf_abc\", COMMANDLINE_ARGS = \"--api\" }\nOPENAI_API_KEY=sk-123\ncommand = [\"x\", \"--hf-token\",\n")
	out := string(File("corral.toml", bad))
	if !strings.HasPrefix(out, tomlTextHeader) || strings.Contains(out, "hf_abc") || strings.Contains(out, "sk-123") ||
		!strings.Contains(out, `COMMANDLINE_ARGS = "--api"`) {
		t.Errorf("fallback:\n%s", out)
	}
	if again := string(File("corral.toml", []byte(out))); again != out {
		t.Errorf("fallback twice:\n%s", again)
	}
	// Invalid JSON is redacted as text.
	if out := string(File("status.json", []byte(`{"token": "abc"`))); out != `{"token": "[redacted]"` {
		t.Errorf("bad json: %s", out)
	}
	if out := string(File("logs/webui.txt", []byte("2024 stdout Launching with --gradio-auth u:p\n"))); out != "2024 stdout Launching with --gradio-auth [redacted]\n" {
		t.Errorf("log: %s", out)
	}
}
