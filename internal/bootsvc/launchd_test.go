package bootsvc

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// parsePlist reads a property list with encoding/xml into Go values:
// dict -> map[string]any, array -> []any, string, integer -> int64,
// true/false -> bool. It refuses what a plist must not have (a dict key
// without a value, an unknown element, two roots).
func parsePlist(t *testing.T, data []byte) map[string]any {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	var next func(start xml.StartElement) any
	text := func() string {
		var b strings.Builder
		for {
			tok, err := d.Token()
			if err != nil {
				t.Fatalf("plist: %v", err)
			}
			switch tok := tok.(type) {
			case xml.CharData:
				b.Write(tok)
			case xml.EndElement:
				return b.String()
			default:
				t.Fatalf("plist: unexpected %T inside a scalar", tok)
			}
		}
	}
	next = func(start xml.StartElement) any {
		switch start.Name.Local {
		case "string":
			return text()
		case "integer":
			var n int64
			if _, err := fmt.Sscan(text(), &n); err != nil {
				t.Fatalf("plist: integer: %v", err)
			}
			return n
		case "true", "false":
			text()
			return start.Name.Local == "true"
		case "array", "dict":
			var items []any
			var keys []string
			for {
				tok, err := d.Token()
				if err != nil {
					t.Fatalf("plist: %v", err)
				}
				switch tok := tok.(type) {
				case xml.StartElement:
					if start.Name.Local == "dict" && len(keys) == len(items) {
						if tok.Name.Local != "key" {
							t.Fatalf("plist: dict holds <%s> where a <key> belongs", tok.Name.Local)
						}
						keys = append(keys, text())
						continue
					}
					items = append(items, next(tok))
				case xml.EndElement:
					if start.Name.Local == "array" {
						if items == nil {
							items = []any{}
						}
						return items
					}
					if len(keys) != len(items) {
						t.Fatalf("plist: key %q has no value", keys[len(keys)-1])
					}
					m := map[string]any{}
					for i, k := range keys {
						if _, dup := m[k]; dup {
							t.Fatalf("plist: key %q twice", k)
						}
						m[k] = items[i]
					}
					return m
				}
			}
		}
		t.Fatalf("plist: unknown element <%s>", start.Name.Local)
		return nil
	}
	var root map[string]any
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("plist: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch {
			case se.Name.Local == "plist":
			case se.Name.Local == "dict" && root == nil:
				root = next(se).(map[string]any)
			default:
				t.Fatalf("plist: unexpected <%s> at the top", se.Name.Local)
			}
		}
	}
	if root == nil {
		t.Fatal("plist: no dict")
	}
	return root
}

func TestLaunchdPlist(t *testing.T) {
	for _, scope := range []Scope{User, System} {
		s := testSpec(scope)
		if scope == System {
			s.RunAs = "_corral"
		}
		data, err := LaunchdPlist(s, "/Users/a/Library/Logs/corral-webui.log")
		if err != nil {
			t.Fatal(err)
		}
		p := parsePlist(t, data)
		want := map[string]any{
			"Label":             "sh.corral.webui",
			"ProgramArguments":  []any{s.Executable, "-c", s.Config, "--state-dir", s.StateDir, "daemon"},
			"RunAtLoad":         true,
			"KeepAlive":         map[string]any{"SuccessfulExit": false, "Crashed": true},
			"ExitTimeOut":       int64(90),
			"ThrottleInterval":  int64(10),
			"WorkingDirectory":  s.WorkingDir,
			"StandardOutPath":   "/Users/a/Library/Logs/corral-webui.log",
			"StandardErrorPath": "/Users/a/Library/Logs/corral-webui.log",
			"EnvironmentVariables": map[string]any{
				"PATH": "/usr/local/bin:/usr/bin:/bin", "WEIRD": `a "b" \c %d $e`,
			},
		}
		if scope == System {
			want["UserName"] = "_corral"
		}
		if !reflect.DeepEqual(p, want) {
			got, _ := json.MarshalIndent(p, "", " ")
			exp, _ := json.MarshalIndent(want, "", " ")
			t.Errorf("%s plist reads back as\n%s\nwant\n%s\n%s", scope, got, exp, data)
		}
		plistlib(t, data, want)
	}
}

// plistlib has Python's plistlib (an independent parser, the one Apple's
// format is most often read with off a Mac) load the file, when python3 is
// installed.
func plistlib(t *testing.T, data []byte, want map[string]any) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Log("python3 is not installed: the plist is not checked with plistlib")
		return
	}
	path := filepath.Join(tempDir(t), "x.plist")
	os.WriteFile(path, data, 0o644)
	out, err := exec.Command(py, "-c", `import json, plistlib, sys
print(json.dumps(plistlib.load(open(sys.argv[1], "rb"))))`, path).CombinedOutput()
	if err != nil {
		t.Fatalf("plistlib cannot load the plist: %v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	// JSON turns integers into float64.
	exp, _ := json.Marshal(want)
	var wantJSON map[string]any
	json.Unmarshal(exp, &wantJSON)
	if !reflect.DeepEqual(got, wantJSON) {
		t.Errorf("plistlib reads\n%s\nwant\n%s", out, exp)
	}
}

func TestLaunchdPlistRefusesRelativeLog(t *testing.T) {
	if _, err := LaunchdPlist(testSpec(User), "corral.log"); err == nil {
		t.Error("a relative log path was accepted")
	}
}
