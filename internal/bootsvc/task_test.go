package bootsvc

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"unicode/utf16"
)

func windowsSpec() Spec {
	return Spec{
		Name:       "webui",
		Scope:      User,
		Executable: `C:\Program Files\corral\corral.exe`,
		Config:     `C:\Users\alice\My SD & <co> 'x'\corral.toml`,
		StateDir:   `C:\Users\alice\AppData\Local\corral\web ui`,
		WorkingDir: `C:\Users\alice\My SD & <co> 'x'`,
		Account:    `DESKTOP-1\alice`, AccountSID: "S-1-5-21-1-2-3-1001",
	}
}

// argvW splits a command line by the rules CommandLineToArgvW documents:
// 2n backslashes and a quote give n backslashes and toggle quoting, 2n+1
// give n and a literal quote, other backslashes are literal. Written from
// the documentation, not from the quoting it checks.
func argvW(line string) []string {
	var args []string
	var w strings.Builder
	in, quoted := false, false
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == '\\':
			n := 0
			for i < len(line) && line[i] == '\\' {
				n++
				i++
			}
			if i < len(line) && line[i] == '"' {
				w.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					w.WriteByte('"')
					i++
				}
			} else {
				w.WriteString(strings.Repeat(`\`, n))
			}
			in = true
			continue
		case c == '"':
			quoted = !quoted
			in = true
		case (c == ' ' || c == '\t') && !quoted:
			if in {
				args = append(args, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteByte(c)
			in = true
		}
		i++
	}
	if in {
		args = append(args, w.String())
	}
	return args
}

func TestWindowsCommandLine(t *testing.T) {
	for _, args := range [][]string{
		{"-c", `C:\a b\c.toml`, "daemon"},
		{`C:\dir with space\`, `C:\plain\`, `a"b`, `a\"b`, `"`, `\\server\share\x y`, "", "tab\there"},
		{`C:\x\\`, `ends with \ and space \`, `\"quoted\"`},
	} {
		line := WindowsCommandLine(args)
		if got := argvW(line); strings.Join(got, "\x00") != strings.Join(args, "\x00") {
			t.Errorf("%q -> %s -> %q", args, line, got)
		}
	}
	if got := WindowsCommandLine([]string{`C:\plain`, "daemon"}); got != `C:\plain daemon` {
		t.Errorf("words without spaces or quotes are quoted: %s", got)
	}
}

func TestTaskXML(t *testing.T) {
	s := windowsSpec()
	text, err := TaskXML(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text, `<?xml version="1.0" encoding="UTF-16"?>`) {
		t.Errorf("no UTF-16 declaration:\n%s", text)
	}
	var t2 Task
	if err := xml.Unmarshal([]byte(stripDecl(text)), &t2); err != nil {
		t.Fatalf("the task does not parse back: %v\n%s", err, text)
	}
	var ns struct {
		XMLName  xml.Name
		Settings struct {
			XMLName xml.Name
		} `xml:"Settings"`
	}
	xml.Unmarshal([]byte(stripDecl(text)), &ns)
	if ns.XMLName.Space != taskNS || ns.Settings.XMLName.Space != taskNS {
		t.Errorf("the task's elements are in namespace %q / %q, want %q", ns.XMLName.Space, ns.Settings.XMLName.Space, taskNS)
	}
	if t2.Triggers.Logon == nil || !t2.Triggers.Logon.Enabled || t2.Triggers.Logon.UserID != s.Account {
		t.Errorf("logon trigger = %+v, want enabled for %s", t2.Triggers.Logon, s.Account)
	}
	p := t2.Principals.Principal
	if p.UserID != s.AccountSID || p.LogonType != "InteractiveToken" || p.RunLevel != "LeastPrivilege" || p.ID != t2.Actions.Context {
		t.Errorf("principal = %+v (actions' context %q)", p, t2.Actions.Context)
	}
	st := t2.Settings
	if st.ExecutionTimeLimit != "PT0S" || st.Priority != 4 || st.MultipleInstancesPolicy != "IgnoreNew" ||
		st.DisallowStartIfOnBatteries || st.StopIfGoingOnBatteries || !st.Enabled || !st.AllowStartOnDemand ||
		st.RestartOnFailure == nil || st.RestartOnFailure.Interval != "PT1M" {
		t.Errorf("settings = %+v", st)
	}
	if len(t2.Actions.Exec) != 1 {
		t.Fatalf("actions = %+v", t2.Actions)
	}
	e := t2.Actions.Exec[0]
	if e.Command != s.Executable || e.WorkingDirectory != s.WorkingDir {
		t.Errorf("exec = %+v", e)
	}
	if got := argvW(e.Arguments); strings.Join(got, "\x00") != strings.Join(s.Args(), "\x00") {
		t.Errorf("arguments %s split into %q, want %q", e.Arguments, got, s.Args())
	}
	if t2.RegistrationInfo.URI != `\corral-webui` {
		t.Errorf("URI = %q", t2.RegistrationInfo.URI)
	}

	// schtasks reads UTF-16LE with a byte-order mark.
	b := UTF16(text)
	if !bytes.HasPrefix(b, []byte{0xff, 0xfe}) || len(b)%2 != 0 {
		t.Fatalf("UTF16 output starts % x", b[:4])
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 2; i < len(b); i += 2 {
		u = append(u, uint16(b[i])|uint16(b[i+1])<<8)
	}
	if string(utf16.Decode(u)) != text || decodeText(b) != text {
		t.Error("UTF16 does not decode back to the text")
	}
}

func TestTaskXMLRefusals(t *testing.T) {
	for _, tc := range []struct {
		what string
		edit func(*Spec)
		want string
	}{
		{"system scope", func(s *Spec) { s.Scope = System }, "Windows service"},
		{"no account", func(s *Spec) { s.Account = "" }, "account"},
		{"environment", func(s *Spec) { s.Env = []string{"A=b"} }, "environment"},
		{"percent sign", func(s *Spec) { s.Config = `C:\100%\corral.toml` }, "expand"},
		{"unix path", func(s *Spec) { s.Config = "/home/a/corral.toml" }, "absolute"},
		{"relative path", func(s *Spec) { s.StateDir = `corral\state` }, "absolute"},
		{"forward slashes", func(s *Spec) { s.StateDir = `C:/corral/state` }, "absolute"},
	} {
		s := windowsSpec()
		tc.edit(&s)
		if _, err := TaskXML(s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error saying %q", tc.what, err, tc.want)
		}
	}
}
