package config

import (
	"slices"
	"strings"
)

// locate finds the line and column (1-based) where the dotted key path is
// defined in TOML source: as `key = ...` under its table header, as a table
// header itself, or inside an inline table. BurntSushi/toml reports
// positions only for syntax errors; validation errors need them too. When the
// key cannot be found, the position of its nearest enclosing table is given.
//
// A path part "#N" is the N-th element (0-based) of the list at the path
// before it: an element of an inline list (`ready = [{ ... }, { ... }]`)
// or the N-th `[[table]]` of that name, and a key after it is looked for
// inside that element.
func locate(src string, path []string) (line, col int) {
	if i := slices.IndexFunc(path, isElem); i >= 0 {
		return locateElem(src, path[:i], elemIndex(path[i]), path[i+1:])
	}
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

// locateElem finds element idx of the list at listPath, and the key rest[0]
// inside it when rest is given; failing that, the list itself.
func locateElem(src string, listPath []string, idx int, rest []string) (line, col int) {
	kl, kc := locate(src, listPath)
	vl, vc := valueAt(src, kl, kc)
	if off := offsetOf(src, vl, vc); (vl != kl || vc != kc) && off < len(src) && src[off] == '[' {
		if start, ok := nthElement(src, off, idx); ok {
			if len(rest) > 0 && start < len(src) && src[start] == '{' {
				if k, ok := keyInTable(src, start, rest[0]); ok {
					return lineCol(src, k)
				}
			}
			return lineCol(src, start)
		}
		return kl, kc
	}
	// [[a.b]] headers: the idx-th of this name, and the key under it.
	lines := strings.Split(src, "\n")
	n := 0
	for i, raw := range lines {
		trim := strings.TrimSpace(stripComment(raw))
		if !strings.HasPrefix(trim, "[[") || !slices.Equal(splitKey(strings.Trim(trim, "[] \t")), listPath) {
			continue
		}
		if n++; n-1 != idx {
			continue
		}
		hl, hc := i+1, len(raw)-len(strings.TrimLeft(raw, " \t"))+1
		if len(rest) == 0 {
			return hl, hc
		}
		for j := i + 1; j < len(lines); j++ {
			text := stripComment(lines[j])
			t := strings.TrimSpace(text)
			if strings.HasPrefix(t, "[") {
				break
			}
			if eq := strings.Index(text, "="); eq > 0 && slices.Equal(splitKey(strings.TrimSpace(text[:eq])), rest[:1]) {
				return j + 1, len(text) - len(strings.TrimLeft(text, " \t")) + 1
			}
		}
		return hl, hc
	}
	return kl, kc
}

// offsetOf is the byte offset of a 1-based line and column.
func offsetOf(src string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(src[off:], '\n')
		if i < 0 {
			return len(src)
		}
		off += i + 1
	}
	return min(off+col-1, len(src))
}

// scanValue calls visit for each byte of src from off that is outside
// strings and comments, with the bracket depth before it (relative to
// off), until visit returns false or the value that starts at off ends.
func scanValue(src string, off int, visit func(i, depth int) bool) {
	depth := 0
	for i := off; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '"' || c == '\'':
			if !visit(i, depth) {
				return
			}
			triple := strings.HasPrefix(src[i:], strings.Repeat(string(c), 3))
			end := string(c)
			if triple {
				end = strings.Repeat(end, 3)
				i += 2
			}
			for i++; i < len(src) && !strings.HasPrefix(src[i:], end); i++ {
				if c == '"' && src[i] == '\\' {
					i++
				}
			}
			i += len(end) - 1
			continue
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			continue
		}
		if !visit(i, depth) {
			return
		}
		switch c {
		case '[', '{':
			depth++
		case ']', '}':
			if depth--; depth == 0 {
				return
			}
		}
	}
}

// nthElement returns the offset of element idx of the list that starts
// at off (a '[').
func nthElement(src string, off, idx int) (int, bool) {
	n, found, at, want := 0, false, 0, true
	scanValue(src, off, func(i, depth int) bool {
		c := src[i]
		if depth != 1 {
			return true
		}
		switch {
		case c == ',':
			n++
			want = true
		case c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r':
		case want:
			want = false
			if n == idx {
				found, at = true, i
				return false
			}
		}
		return true
	})
	return at, found
}

// keyInTable returns the offset of key k of the inline table at off.
func keyInTable(src string, off int, k string) (int, bool) {
	at, found, want := 0, false, true
	scanValue(src, off, func(i, depth int) bool {
		c := src[i]
		if depth != 1 {
			return true
		}
		switch {
		case c == ',' || c == '{':
			want = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		case want:
			want = false
			rest := src[i:]
			eq := strings.IndexByte(rest, '=')
			if eq > 0 && slices.Equal(splitKey(strings.TrimSpace(rest[:eq])), []string{k}) {
				found, at = true, i
				return false
			}
		}
		return true
	})
	return at, found
}
