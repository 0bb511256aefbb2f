package importer

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TOML writes r as a commented corral.toml. Values are quoted by hand rather
// than by an encoder because comments (where each service and setting came
// from, and every finding) go between the keys, which no TOML encoder
// writes; the tests decode every golden file with the daemon's own parser.
func (r *Result) TOML() []byte {
	var b bytes.Buffer
	src := "nothing"
	if len(r.Sources) > 0 {
		src = strings.Join(r.Sources, ", ")
	}
	comment(&b, "", fmt.Sprintf("Imported by `corral import %s` from %s.", r.Format, src))
	comment(&b, "", "Each service says where it came from. Settings without an exact corral "+
		"equivalent are listed where they belong, as \"not imported\", \"approximated\" or "+
		"\"not needed\", and in the import report; docs/import.md says how each setting maps, docs/configuration.md lists every key.")
	if len(r.Findings) > 0 {
		b.WriteString("#\n")
		for _, f := range r.Findings {
			comment(&b, "", f.String())
		}
	}
	if len(r.Groups) > 0 {
		// Before the first [services.NAME] table: keys after one belong to it.
		b.WriteString("\n")
		comment(&b, "", "groups: corral start @NAME (stop, restart, status, logs, ...) acts on the services of a group")
		b.WriteString("[groups]\n")
		for _, g := range r.Groups {
			from := g.Origin.String()
			if g.From != "" {
				from += ", " + g.From
			}
			fmt.Fprintf(&b, "%s = %s  # from %s\n", key(g.Name), array(g.Members), oneLine(from))
		}
	}
	for _, s := range r.Services {
		b.WriteString("\n")
		from := s.Origin.String()
		if s.From != "" {
			from += ", " + s.From
		}
		comment(&b, "", "from "+from)
		for _, n := range s.Notes {
			comment(&b, "", n)
		}
		fmt.Fprintf(&b, "[services.%s]\n", key(s.Name))
		if len(s.Command) > 0 {
			fmt.Fprintf(&b, "command = %s\n", array(s.Command))
		} else {
			fmt.Fprintf(&b, "shell = %s\n", quote(s.Shell))
		}
		if s.Dir != "" {
			fmt.Fprintf(&b, "dir = %s\n", quote(s.Dir))
		}
		if s.User != "" {
			fmt.Fprintf(&b, "user = %s\n", quote(s.User))
			if s.Group != "" {
				fmt.Fprintf(&b, "group = %s\n", quote(s.Group))
			}
		}
		if s.Umask != "" {
			fmt.Fprintf(&b, "umask = %s\n", quote(s.Umask))
		}
		if s.EnvFile != "" {
			fmt.Fprintf(&b, "env_file = %s\n", quote(s.EnvFile))
		}
		if s.Autostart != nil {
			fmt.Fprintf(&b, "autostart = %t\n", *s.Autostart)
		}
		if len(s.After) > 0 {
			fmt.Fprintf(&b, "after = %s\n", array(s.After))
		}
		if t := s.Restart.table(); t != "" {
			fmt.Fprintf(&b, "restart = %s\n", t)
		}
		if t := s.Stop.table(); t != "" {
			fmt.Fprintf(&b, "stop = %s\n", t)
		}
		if s.Memory != "" {
			fmt.Fprintf(&b, "limits = { memory = %s }\n", quote(s.Memory))
			b.WriteString("on_limit = \"restart\"\n")
		}
		for _, f := range s.Findings {
			comment(&b, "", f.local())
		}
		if len(s.Env) > 0 {
			fmt.Fprintf(&b, "\n[services.%s.env]\n", key(s.Name))
			for _, e := range s.Env {
				line := key(e.Key) + " = " + quote(e.Value)
				if e.Comment != "" {
					line += "  # " + oneLine(e.Comment)
				}
				b.WriteString(line + "\n")
			}
		}
	}
	return b.Bytes()
}

func (t Restart) table() string {
	var kv []string
	add := func(k, v string) {
		if v != "" {
			kv = append(kv, k+" = "+quote(v))
		}
	}
	add("policy", t.Policy)
	add("backoff", t.Backoff)
	add("max_backoff", t.MaxBackoff)
	if t.Burst != nil {
		kv = append(kv, "burst = "+strconv.Itoa(*t.Burst))
	}
	add("window", t.Window)
	add("stable_after", t.StableAfter)
	return inline(kv)
}

func (t Stop) table() string {
	var kv []string
	if t.Signal != "" {
		kv = append(kv, "signal = "+quote(t.Signal))
	}
	if t.Grace != "" {
		kv = append(kv, "grace = "+quote(t.Grace))
	}
	return inline(kv)
}

func inline(kv []string) string {
	if len(kv) == 0 {
		return ""
	}
	return "{ " + strings.Join(kv, ", ") + " }"
}

// commentWidth is where comments wrap, so that a long note stays readable.
const commentWidth = 100

// comment writes text as # lines, wrapped at commentWidth; continuation
// lines are indented.
func comment(b *bytes.Buffer, indent, text string) {
	words := strings.Fields(oneLine(text))
	line := "#"
	for _, w := range words {
		if len(line)+1+len(w) > commentWidth && line != "#" && line != "#  " {
			b.WriteString(indent + line + "\n")
			line = "#  "
		}
		line += " " + w
	}
	b.WriteString(indent + line + "\n")
}

// oneLine keeps a comment on its line and valid: a newline in a value
// would end the comment and start a line of TOML, and TOML allows no other
// control character (but tab) nor invalid UTF-8 in a comment either.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func key(k string) string {
	if bareKey.MatchString(k) {
		return k
	}
	return quote(k)
}

func array(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// quote writes s as a TOML basic string. TOML forbids raw control
// characters other than tab in them, and invalid UTF-8 anywhere.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\uFFFD`)
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
