package importer

import (
	"os"
	"regexp"
	"strings"
)

// dotenvVar is one variable of a .env file.
type dotenvVar struct {
	Key, Value string
	Line       int
	// FromEnv names the variables the value took from the environment of
	// the import (a reference to one the file does not set); Refs every
	// variable it refers to, of the file or not.
	FromEnv, Refs []string
}

var dotenvKeyRE = regexp.MustCompile(`^(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.]*)[ \t]*=[ \t]*`)

// parseDotenv reads a .env file as the dotenv libraries that foreman's and
// overmind's users rely on read it (the Ruby gem and godotenv agree on
// these rules): KEY=value lines, an optional "export ", # comments on their
// own lines or after an unquoted value, single quotes literal, double
// quotes with \n \t \" \\ \$ escapes and spanning lines, and $VAR / ${VAR}
// expanded in double-quoted and unquoted values from the file's earlier
// variables, else from the environment.
func parseDotenv(path, display string, lookup func(string) (string, bool)) ([]dotenvVar, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := strings.ReplaceAll(string(src), "\r\n", "\n")
	lines := strings.Split(text, "\n")
	var vars []dotenvVar
	set := map[string]string{}
	for i := 0; i < len(lines); i++ {
		line := strings.TrimLeft(lines[i], " \t")
		lineNo := i + 1
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := dotenvKeyRE.FindStringSubmatch(line)
		if m == nil {
			return nil, &ParseError{Pos{display, lineNo}, "not a KEY=value line (dotenv syntax: KEY=value, export KEY=value, # comment)"}
		}
		k, rest := m[1], line[len(m[0]):]
		v := dotenvVar{Key: k, Line: lineNo}
		expand := true
		switch {
		case strings.HasPrefix(rest, "'"):
			end := strings.IndexByte(rest[1:], '\'')
			for end < 0 && i+1 < len(lines) { // a quoted value may span lines
				i++
				rest += "\n" + lines[i]
				end = strings.IndexByte(rest[1:], '\'')
			}
			if end < 0 {
				return nil, &ParseError{Pos{display, lineNo}, k + ": no closing quote (')"}
			}
			v.Value, expand = rest[1:1+end], false
			rest = rest[2+end:]
		case strings.HasPrefix(rest, `"`):
			end := closingDouble(rest)
			for end < 0 && i+1 < len(lines) {
				i++
				rest += "\n" + lines[i]
				end = closingDouble(rest)
			}
			if end < 0 {
				return nil, &ParseError{Pos{display, lineNo}, k + `: no closing quote (")`}
			}
			v.Value = rest[1:end]
			rest = rest[end+1:]
		default:
			if j := strings.Index(rest, " #"); j >= 0 {
				rest = rest[:j]
			} else if j := strings.Index(rest, "\t#"); j >= 0 {
				rest = rest[:j]
			}
			v.Value, rest = strings.TrimRight(rest, " \t"), ""
		}
		if t := strings.TrimSpace(rest); t != "" && !strings.HasPrefix(t, "#") {
			return nil, &ParseError{Pos{display, lineNo}, k + ": unexpected " + t + " after the quoted value"}
		}
		double := strings.HasPrefix(line[len(m[0]):], `"`)
		if expand {
			v.Value, v.FromEnv, v.Refs = expandDollar(v.Value, double, set, lookup)
		}
		set[k] = v.Value
		vars = append(vars, v)
	}
	return vars, nil
}

// closingDouble returns the index of the " that closes s[0], or -1.
func closingDouble(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

var dollarRE = regexp.MustCompile(`\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expandDollar expands $VAR and ${VAR} (and, in double quotes, the
// backslash escapes) from the file's variables, else from lookup. It
// returns the names taken from lookup, and all the names referred to.
func expandDollar(s string, double bool, set map[string]string, lookup func(string) (string, bool)) (string, []string, []string) {
	var fromEnv, refs []string
	s = dollarRE.ReplaceAllStringFunc(s, func(m string) string {
		if m == `\$` {
			return "\x00$" // kept for the escape pass (or restored below)
		}
		name := strings.Trim(m, "${}")
		refs = appendNew(refs, name)
		if v, ok := set[name]; ok {
			return v
		}
		v, _ := lookup(name)
		fromEnv = append(fromEnv, name)
		return v
	})
	if double {
		s = strings.NewReplacer(`\n`, "\n", `\r`, "\r", `\t`, "\t", `\"`, `"`, `\\`, `\`, "\x00$", "$").Replace(s)
	} else {
		s = strings.ReplaceAll(s, "\x00$", "$")
	}
	return s, fromEnv, refs
}
