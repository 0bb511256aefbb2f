package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Includes and groups: what spans the files of one configuration.
//
// include = ["conf.d/*.toml"] (top level, in any file) reads more files:
// each pattern is relative to the file that names it; a glob's matches are
// taken in sorted order (a glob may match nothing, a plain path must
// exist); patterns in the order written. An included file may define
// services and groups and include further files, but has no [corral]
// table (the daemon's settings are the main file's). A service or group is
// defined in one file only: a second definition is an error naming both
// places. A file reached twice (a cycle, or two patterns that match it) is
// an error. Relative paths inside a file (dir, env_file, pidfile, ...)
// are relative to that file's directory.

// maxIncludedFiles bounds the files one configuration may read, and
// maxIncludedSize each of them.
const (
	maxIncludedFiles = 1000
	maxIncludedSize  = 16 << 20
)

// readRegular reads a regular file of at most limit bytes. It never
// blocks on a FIFO or a device (opened without waiting, then refused).
func readRegular(path string, limit int64) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscallNonblock, 0)
	if err != nil {
		if pe, ok := err.(*os.PathError); ok {
			err = pe.Err
		}
		return "", fmt.Errorf("cannot be read: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	switch {
	case err != nil:
		return "", fmt.Errorf("cannot be read: %w", err)
	case st.IsDir():
		return "", errors.New("is a directory, not a file")
	case !st.Mode().IsRegular():
		// A FIFO or a device could block the load (or a start) forever.
		return "", fmt.Errorf("is not a regular file (%s), and only a regular file is read", st.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return "", fmt.Errorf("cannot be read: %w", err)
	}
	if int64(len(b)) > limit {
		return "", fmt.Errorf("is larger than %d bytes", limit)
	}
	return string(b), nil
}

// decodeFile reads one file's TOML: syntax errors and values of the wrong
// type end it (returned); unknown keys are collected in the parser's
// errors, and the rest of the file is still validated.
func decodeFile(path, src string) (*parser, rawFile, error) {
	p := &parser{path: path, src: src}
	var raw rawFile
	md, err := toml.Decode(src, &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			line, col := pe.Position.Line, pe.Position.Col
			if line < 1 {
				// The lexer reports some errors at the end of input (a
				// backslash as the last byte) without a line: derive it
				// from the byte offset.
				line, col = lineCol(src, pe.Position.Start)
			}
			return nil, raw, &Error{File: path, Line: line, Col: col, Msg: pe.Message}
		}
	}
	// A value of the wrong type, in the user's words, at its value; all of
	// them, not only the first the decoder met (and also where the decoder
	// says nothing: `services = 3`).
	unknown := p.shapeErrors()
	if len(p.errs) > 0 {
		// The decoder stopped at the first; the unknown keys are told too.
		reported := map[string]bool{}
		for _, k := range unknown {
			p.unknownKey(k, reported)
		}
		sortErrors(p.errs)
		return nil, raw, errors.Join(p.errs...)
	}
	if err != nil {
		// Type mismatches the schema does not know of come as
		// `toml: line N (last key "a.b"): msg`.
		if m := decodeErrRE.FindStringSubmatch(err.Error()); m != nil {
			line, col := locate(src, splitKey(m[2]))
			if n, _ := strconv.Atoi(m[1]); n != line {
				line, col = n, 1
			}
			return nil, raw, &Error{File: path, Line: line, Col: col, Key: m[2], Msg: m[3]}
		}
		return nil, raw, fmt.Errorf("%s: %w", path, err)
	}
	reported := map[string]bool{}
	for _, k := range md.Undecoded() {
		// Keys that take several shapes are decoded as any: the schema
		// walk checked what is under them.
		if !underFlex(k) {
			p.unknownKey(k, reported)
		}
	}
	for _, k := range unknown {
		if underFlex(k) {
			p.unknownKey(k, reported)
		}
	}
	p.defined = md.IsDefined
	return p, raw, nil
}

// underFlex reports whether a key lies under a key that takes several
// shapes (decoded as any, checked by the schema walk).
func underFlex(path []string) bool {
	n := schema
	for _, k := range path[:max(0, len(path)-1)] {
		if n = n.child(k); n == nil {
			return false
		}
		if n.flex() {
			return true
		}
	}
	return false
}

// unit is one file of a configuration.
type unit struct {
	p   *parser
	raw rawFile
	dir string
}

// loader reads the files a configuration includes.
type loader struct {
	units []*unit
	// seen maps each file read (its real path) to where it was included.
	seen  map[string]string
	fatal []error // files that could not be decoded
}

// finish validates the services and groups of the main file (p, raw, src)
// and of the files it includes, into f.
func (p *parser) finish(f *File, raw rawFile, src string) (*File, error) {
	main := &unit{p: p, raw: raw, dir: filepath.Dir(p.path)}
	ld := &loader{units: []*unit{main}, seen: map[string]string{realPath(p.path): ""}}
	ld.include(main, []string{realPath(p.path)})

	defined := map[string]*unit{}
	for _, u := range ld.units {
		for _, name := range sortedKeysOf(u.raw.Services) {
			if first, dup := defined[name]; dup {
				u.p.errAt([]string{"services", name}, "is defined twice: here and at %s; a service is defined in one file only", first.p.position([]string{"services", name}))
				continue
			}
			defined[name] = u
			if s := u.p.service(name, u.raw.Services[name], u.dir); s != nil {
				f.Services[name] = s
			}
		}
	}
	p.checkAfter(f, func(name string) *parser {
		if u := defined[name]; u != nil {
			return u.p
		}
		return p
	})
	ld.groups(f)

	if len(ld.units) > 1 {
		h := sha256.New()
		h.Write([]byte(src))
		for _, u := range ld.units[1:] {
			f.Includes = append(f.Includes, u.p.path)
			fmt.Fprintf(h, "\x00%s\x00%s", u.p.path, u.p.src)
		}
		f.Digest = hex.EncodeToString(h.Sum(nil))
	}
	var errs []error
	for _, u := range ld.units {
		sortErrors(u.p.errs)
		errs = append(append(errs, u.p.errs...), u.p.extErrs...)
	}
	errs = append(errs, ld.fatal...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// position is where a key is defined, as file:line:col.
func (p *parser) position(key []string) string {
	line, col := locate(p.src, key)
	return fmt.Sprintf("%s:%d:%d", p.path, line, col)
}

func realPath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	return abs
}

// includePatterns returns an include value's patterns with the key of each.
func includePatterns(v any) (pats []string, keys [][]string) {
	switch x := v.(type) {
	case string:
		return []string{x}, [][]string{{"include"}}
	case []any:
		for i, e := range x {
			if s, ok := e.(string); ok {
				pats = append(pats, s)
				keys = append(keys, []string{"include", "#" + strconv.Itoa(i)})
			}
		}
	}
	return pats, keys
}

// include reads the files that u includes, and theirs; chain is the real
// paths from the main file down to u.
func (ld *loader) include(u *unit, chain []string) {
	pats, keys := includePatterns(u.raw.Include)
	for i, pat := range pats {
		key := keys[i]
		if pat == "" || strings.IndexByte(pat, 0) >= 0 {
			u.p.errAt(key, "expected a path or a glob (\"conf.d/*.toml\"), found %q", pat)
			continue
		}
		abs := absPath(pat, u.dir)
		var matches []string
		if strings.ContainsAny(pat, `*?[`) {
			m, err := filepath.Glob(abs)
			if err != nil {
				u.p.errAt(key, "%q is not a valid glob: %v", pat, err)
				continue
			}
			for _, path := range m {
				if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
					matches = append(matches, path)
				}
			}
			sort.Strings(matches)
		} else {
			st, err := os.Stat(abs)
			switch {
			case err != nil:
				u.p.errAt(key, "%s does not exist; create it or remove it from include (a glob such as \"conf.d/*.toml\" may match nothing, a plain path must exist)", abs)
				continue
			case !st.Mode().IsRegular():
				u.p.errAt(key, "%s is not a file (to include a directory's files write %q)", abs, filepath.Join(pat, "*.toml"))
				continue
			}
			matches = []string{abs}
		}
		for _, path := range matches {
			real := realPath(path)
			if at := slices.Index(chain, real); at >= 0 {
				cycle := append(slices.Clone(chain[at:]), real)
				u.p.errAt(key, "include cycle: %s; a file cannot include itself (write a glob that does not match it)", strings.Join(cycle, " -> "))
				continue
			}
			if first, ok := ld.seen[real]; ok {
				u.p.errAt(key, "%s is included twice (also by %s); include each file once", path, first)
				continue
			}
			ld.seen[real] = u.p.position(key)
			if len(ld.units) >= maxIncludedFiles {
				u.p.errAt(key, "more than %d included files", maxIncludedFiles)
				return
			}
			src, err := readRegular(path, maxIncludedSize)
			if err != nil {
				u.p.errAt(key, "%s %v", path, err)
				continue
			}
			sub, raw, err := decodeFile(path, src)
			if err != nil {
				ld.fatal = append(ld.fatal, err)
				continue
			}
			if sub.defined("corral") {
				sub.errAt([]string{"corral"}, "[corral] is read only from the main file (%s); move these settings there", ld.units[0].p.path)
			}
			child := &unit{p: sub, raw: raw, dir: filepath.Dir(path)}
			ld.units = append(ld.units, child)
			ld.include(child, append(slices.Clone(chain), real))
		}
	}
}

// groups validates the groups of every file into f.Groups.
func (ld *loader) groups(f *File) {
	where := map[string]*unit{}
	for _, u := range ld.units {
		for _, g := range sortedKeysOf(u.raw.Groups) {
			key := []string{"groups", g}
			if first, dup := where[g]; dup {
				u.p.errAt(key, "group %s is defined twice: here and at %s; a group is defined in one file only", g, first.p.position(key))
				continue
			}
			where[g] = u
			before := len(u.p.errs)
			if u.p.checkName(key, "group", g); len(u.p.errs) > before {
				continue
			}
			members := u.raw.Groups[g]
			if len(members) == 0 {
				u.p.errAt(key, "group %s lists no service; name its services ([\"webui\", \"comfyui\"]) or remove it", g)
				continue
			}
			ok := true
			for i, m := range members {
				switch {
				case strings.HasPrefix(m, "@"):
					u.p.errAt(key, "%q: a group lists services, not other groups; list the services of %s here", m, m)
					ok = false
				case f.Services[m] == nil && !ld.serviceNamed(m):
					u.p.errAt(key, "unknown service %q%s", m, DidYouMean(m, f.Names()))
					ok = false
				case slices.Contains(members[:i], m):
					u.p.errAt(key, "service %q is listed twice", m)
					ok = false
				}
			}
			if ok {
				if f.Groups == nil {
					f.Groups = map[string][]string{}
				}
				f.Groups[g] = slices.Clone(members)
			}
		}
	}
}

// serviceNamed reports whether some file defines service name (which may
// have failed validation, and so not be in File.Services: its own errors
// say why, and the group is not also wrong).
func (ld *loader) serviceNamed(name string) bool {
	for _, u := range ld.units {
		if _, ok := u.raw.Services[name]; ok {
			return true
		}
	}
	return false
}

func sortedKeysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// groupNameRE is what a group reference of the CLI (@NAME) may hold.
var groupNameRE = regexp.MustCompile(`^@[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// IsGroupRef reports whether a service argument names a group (@NAME).
func IsGroupRef(arg string) bool { return groupNameRE.MatchString(arg) }

// Expand replaces each @GROUP of names with the group's services (in the
// group's order), keeping the order of the arguments and naming no
// service twice. groups maps a group to its services; services are the
// known service names, for hints. An unknown group is an error with a
// hint.
func Expand(names []string, groups map[string][]string, services []string) ([]string, error) {
	var out []string
	for _, n := range names {
		if !strings.HasPrefix(n, "@") {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
			continue
		}
		g := n[1:]
		members, ok := groups[g]
		if !ok {
			known := sortedKeysOf(groups)
			switch {
			case len(known) == 0:
				return nil, fmt.Errorf("config: unknown group %q: the configuration defines no groups (groups = { %s = [\"service\", ...] } at the top of the file adds one)", g, tomlKey(g))
			case slices.Contains(services, g):
				return nil, fmt.Errorf("config: unknown group %q%s; %s is a service: name it without @", g, DidYouMean(g, known), g)
			}
			return nil, fmt.Errorf("config: unknown group %q%s (groups: %s)", g, DidYouMean(g, known), strings.Join(known, ", "))
		}
		for _, m := range members {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out, nil
}
