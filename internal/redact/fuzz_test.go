package redact

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// planted derives from the fuzz input n secrets of 24 letters and digits
// (random to the redactor, reproducible for a failing input), the first as
// an OpenAI-style sk- token, the others bare, and a 32-hex CivitAI-style key.
func planted(in []byte) (skTok, bare1, bare2, hex string) {
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	sum := sha256.Sum256(in)
	sum2 := sha256.Sum256(sum[:])
	gen := func(seed []byte) string {
		b := make([]byte, 24)
		for i := range b {
			b[i] = alnum[int(seed[i])%len(alnum)]
		}
		// A digit and both cases, so the bare ones are not English by chance.
		b[3], b[11], b[19] = '7', 'Q', 'x'
		return string(b)
	}
	const hexd = "0123456789abcdef"
	h := make([]byte, 32)
	for i := range h {
		h[i] = hexd[sum2[i]%16]
	}
	h[0], h[1] = '9', 'a'
	return "sk-" + gen(sum[:24]), gen(sum[8:32]), gen(sum2[:24]), string(h)
}

func leaked(out string, secrets ...string) string {
	for _, s := range secrets {
		body := strings.TrimPrefix(s, "sk-") // the body alone is the secret too
		if strings.Contains(out, body) {
			return s
		}
	}
	return ""
}

var stringSeeds = []string{
	"",
	"python launch.py --api --api-auth admin:hunter2 --gradio-auth user:pass --port 7860 --listen",
	"python launch.py --hf-token X --api-key=sk-abc --keep-alive 5 --xformers",
	`["python", "--hf-token", "X"]`,
	"Authorization: Bearer x\nCookie: a=b",
	"https://user:pass@host/x?token=abc&b=1",
	"HF_TOKEN=abc CIVITAI=3f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c python",
	`{\"password\": \"abc\"}`,
	"-----BEGIN PRIVATE KEY-----\nabc\n",
	"--token \"unterminated",
	`token='`,
	"\"--api-key\"\n,\n'x'",
	"\xff\xfe--auth \x00",
}

// FuzzRedactString: String never panics, is idempotent, and a token
// planted in any text, or a value after a secret flag, never survives; the
// same for Argv over the words of the text.
func FuzzRedactString(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		if again := String(out); again != out {
			t.Fatalf("not idempotent:\n in  %q\n once %q\n twice %q", s, out, again)
		}
		sk, bare1, bare2, _ := planted([]byte(s))
		p := len(s) / 2
		text := s[:p] + " " + sk + " " + s[p:] + " --hf-token " + bare1 + "\nAuthorization: Bearer " + bare2
		if l := leaked(String(text), sk, bare1, bare2); l != "" {
			t.Fatalf("%s survived String(%q): %q", l, text, String(text))
		}
		argv := append(strings.Fields(s), "--api-key", bare1, sk, "--gradio-auth="+bare2)
		if l := leaked(strings.Join(Argv(argv), "\x00"), sk, bare1, bare2); l != "" {
			t.Fatalf("%s survived Argv(%q): %q", l, argv, Argv(argv))
		}
		// A bare token counts as one only as a word of its own: glued to other
		// letters it is judged with them.
		env := []string{"CIVITAI=" + s + " " + sk, "HF_TOKEN=" + s + bare1, "X=" + s + " " + bare2 + " " + s}
		if l := leaked(strings.Join(Env(env), "\x00"), sk, bare1, bare2); l != "" {
			t.Fatalf("%s survived Env(%q): %q", l, env, Env(env))
		}
	})
}

// FuzzRedactJSON: JSON never panics; valid input gives valid output, which
// a second pass leaves alone; tokens planted next to the document, under a
// secret key and after a secret flag in a command line never survive.
func FuzzRedactJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `null`, `"x"`, `1e400`, `{"a":{"b":[1,2,{"c":"d"}]}}`,
		`{"name":"webui","cmdline":["python","--hf-token","X"],"api_key":5,"auth":false}`,
		`{"env":{"CIVITAI":"3f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c","A":1},"message":"--gradio-auth u:p"}`,
		"[\"\\u003c\\ud800\", \"\xff\"]",
		`{"a":1,"a":2}`,
		`{"token":{"x":[true,null,"s"]}}`,
		`[` + strings.Repeat(`[`, 50) + strings.Repeat(`]`, 50) + `]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		out, err := JSON(doc)
		valid := json.Valid(doc)
		if valid && err != nil {
			t.Fatalf("valid JSON refused: %v\n%q", err, doc)
		}
		if err == nil && !json.Valid(out) {
			t.Fatalf("output is not valid JSON:\n in  %q\n out %q", doc, out)
		}
		if err == nil {
			if again, err := JSON(out); err != nil || !bytes.Equal(again, out) {
				t.Fatalf("a second pass changed the output (%v):\n once  %q\n twice %q", err, out, again)
			}
		}
		if err != nil && out != nil {
			t.Fatalf("both a result and an error")
		}
		if got := File("x.json", doc); err == nil && !bytes.Equal(got, out) {
			t.Fatalf("File disagrees with JSON")
		}
		if !valid {
			return
		}
		sk, bare1, bare2, hex := planted(doc)
		wrapped := `{"doc":` + string(doc) + `,"note":" ` + sk + ` ","cmdline":["python","--hf-token","` + bare1 + `","--api-key=` + sk +
			`"],"api_key":"` + bare2 + `","env":{"CIVITAI":"` + hex + `"}}`
		if !json.Valid([]byte(wrapped)) {
			t.Fatalf("planting broke the document: %q", wrapped)
		}
		red, err := JSON([]byte(wrapped))
		if err != nil {
			t.Fatal(err)
		}
		if l := leaked(string(red), sk, bare1, bare2, hex); l != "" {
			t.Fatalf("%s survived:\n%s", l, red)
		}
		// As a line of its own: compact, since a line break in doc would
		// cut the document into lines that are not JSON.
		var line bytes.Buffer
		json.Compact(&line, []byte(wrapped))
		if l := leaked(string(JSONLines([]byte(string(doc)+"\n"+line.String()+"\n"))), sk, bare1, bare2, hex); l != "" {
			t.Fatalf("%s survived JSONLines", l)
		}
		// The token inside every string of the document itself, after
		// whatever the fuzzer put there.
		var v any
		if json.Unmarshal(doc, &v) != nil {
			return // valid but too deep for Unmarshal
		}
		n := 0
		v = plantJSON(v, " "+sk, &n)
		if n == 0 {
			return
		}
		in, _ := json.Marshal(v)
		red, err = JSON(in)
		if err != nil {
			t.Fatal(err)
		}
		if l := leaked(string(red), sk); l != "" {
			t.Fatalf("%s survived:\n in  %s\n out %s", l, in, red)
		}
	})
}

// FuzzRedactTOML: TOML never panics; valid input gives valid output (and a
// second pass changes nothing); tokens planted in a table appended to the
// document never survive, whether it parses (TOML) or not (File's text
// fallback).
func FuzzRedactTOML(f *testing.F) {
	if src, err := os.ReadFile("../../examples/corral.toml"); err == nil {
		f.Add(string(src))
	}
	for _, s := range []string{
		"",
		"[services.webui]\nshell = \"bash webui.sh --hf-token X\"\nenv = { COMMANDLINE_ARGS = \"--api --gradio-auth u:p\", HF_TOKEN = \"hf_abc\" }\n",
		"[services.auth]\ncommand = [\"x\", \"--secret\", \"y\"]\nprofiles = { p = [\"--api-auth\", \"a:b\"] }\n",
		"a = 1979-05-27T07:32:00Z\nb = 07:32:00\nc = 1979-05-27\nd = nan\ne = [1, \"x\", {y = 2}]\n[[t]]\nx = 1\n[[t]]\ntoken = 2\n",
		"\"a.b\" = { \"c d\" = '''x\ny''' }\n",
		"password = \"\"\"\nmulti\nline\"\"\"\n",
		"[corral]\nlimits = { memory = \"2GiB\", processes = 64, fork_rate = 50.5 }\n",
		"not toml = = \n--hf-token X\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		out, err := TOML([]byte(src))
		var m map[string]any
		_, derr := toml.Decode(src, &m)
		if derr == nil && err != nil {
			t.Fatalf("valid TOML refused: %v\n%q", err, src)
		}
		if err == nil {
			var m2 map[string]any
			if _, err := toml.Decode(string(out), &m2); err != nil {
				t.Fatalf("output is not valid TOML: %v\n in  %q\n out %q", err, src, out)
			}
			if again, err := TOML(out); err != nil || !bytes.Equal(again, out) {
				t.Fatalf("a second pass changed the copy (%v):\n once  %q\n twice %q", err, out, again)
			}
		}
		fileOut := File("corral.toml", []byte(src))
		if again := File("corral.toml", fileOut); !bytes.Equal(again, fileOut) {
			t.Fatalf("File twice changed the copy:\n once  %q\n twice %q", fileOut, again)
		}
		sk, bare1, bare2, hex := planted([]byte(src))
		plantedSrc := src + "\n[zz_planted_9]\nnote = \" " + sk + " \"\ncommand = [\"python\", \"--api-key\", \"" + bare1 +
			"\"]\napi_token = \"" + bare2 + "\"\nenv = { CIVITAI = \"" + hex + "\" }\n"
		red := File("corral.toml", []byte(plantedSrc))
		if l := leaked(string(red), sk, bare1, bare2, hex); l != "" {
			t.Fatalf("%s survived:\n in  %q\n out %q", l, plantedSrc, red)
		}
		// The token inside every string of the document itself.
		if derr != nil {
			return
		}
		n := 0
		m = plantJSON(m, " "+sk, &n).(map[string]any)
		var buf bytes.Buffer
		if n == 0 || toml.NewEncoder(&buf).Encode(m) != nil {
			return
		}
		red, err = TOML(buf.Bytes())
		if err != nil {
			t.Fatalf("%v\n%s", err, buf.Bytes())
		}
		if l := leaked(string(red), sk); l != "" {
			t.Fatalf("%s survived:\n in  %s\n out %s", l, buf.Bytes(), red)
		}
	})
}

// plantJSON appends tok to every string in a decoded JSON or TOML value
// and counts them.
func plantJSON(v any, tok string, n *int) any {
	switch x := v.(type) {
	case string:
		*n++
		return x + tok
	case []any:
		for i := range x {
			x[i] = plantJSON(x[i], tok, n)
		}
	case []map[string]any:
		for i := range x {
			x[i] = plantJSON(x[i], tok, n).(map[string]any)
		}
	case map[string]any:
		for k := range x {
			x[k] = plantJSON(x[k], tok, n)
		}
	}
	return v
}
