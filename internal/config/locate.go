package config

import (
	"strings"
)

// locate finds the line and column (1-based) where the dotted key path is
// defined in TOML source: as `key = ...` under its table header, as a table
// header itself, or inside an inline table. BurntSushi/toml reports
// positions only for syntax errors; validation errors need them too. When the
// key cannot be found, the position of its nearest enclosing table is given.
func locate(src string, path []string) (line, col int) {
	lines := strings.Split(src, "\n")
	bestLine, bestCol, bestDepth := 0, 0, -1
	var table []string
	for i, raw := range lines {
		text := stripComment(raw)
		trim := strings.TrimSpace(text)
		if trim == "" {
			continue
		}
		indent := len(text) - len(strings.TrimLeft(text, " \t"))
		if strings.HasPrefix(trim, "[") {
			name := strings.Trim(trim, "[] \t")
			table = splitKey(name)
			// The table itself, one it is in, or (for a table defined
			// only by its subtables: [service.x] defines service) the
			// first under it.
			if d := prefixLen(table, path); (d == len(table) || d == len(path)) && d > bestDepth {
				bestLine, bestCol, bestDepth = i+1, indent+1, d
			}
			continue
		}
		eq := strings.Index(text, "=")
		if eq < 0 {
			continue
		}
		key := append(append([]string{}, table...), splitKey(strings.TrimSpace(text[:eq]))...)
		d := prefixLen(key, path)
		if d == len(key) && d > bestDepth {
			bestLine, bestCol, bestDepth = i+1, indent+1, d
		}
		// Keys inside an inline table on this line: `restart = { policy = "x" }`.
		if d == len(key) && d < len(path) {
			rest := text[eq+1:]
			for j := d; j < len(path); j++ {
				k := strings.Index(rest, path[j])
				if k < 0 {
					break
				}
				after := strings.TrimLeft(rest[k+len(path[j]):], " \t\"'")
				if !strings.HasPrefix(after, "=") {
					break
				}
				if j+1 > bestDepth {
					bestLine, bestCol, bestDepth = i+1, len(text)-len(rest)+k+1, j+1
				}
				rest = after[1:]
			}
		}
	}
	if bestLine == 0 {
		return 1, 1
	}
	return bestLine, bestCol
}

func stripComment(s string) string {
	inStr := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr != 0 && c == '\\' && inStr == '"':
			i++
		case inStr != 0 && c == inStr:
			inStr = 0
		case inStr == 0 && (c == '"' || c == '\''):
			inStr = c
		case inStr == 0 && c == '#':
			return s[:i]
		}
	}
	return s
}

// splitKey splits a dotted TOML key, honouring quoted parts.
func splitKey(k string) []string {
	var parts []string
	var cur strings.Builder
	quote := byte(0)
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		case quote == 0 && c == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}

func prefixLen(a, b []string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
