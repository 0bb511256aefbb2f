package config

import (
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Sketch is what a configuration names, read leniently: the services and
// their profiles of any file that parses as TOML, valid or not (shell
// completion must work while a file is being written).
type Sketch struct {
	// Services maps each service to its profiles, sorted.
	Services map[string][]string
	// Autostart lists the services started by corral up, sorted.
	Autostart []string
	// Groups maps each group to its services, as written.
	Groups map[string][]string
}

// Names returns the service names, sorted.
func (s Sketch) Names() []string {
	out := make([]string, 0, len(s.Services))
	for n := range s.Services {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Profiles returns the profiles of the given services (of every service
// when none is given), sorted and without repeats.
func (s Sketch) Profiles(services ...string) []string {
	if len(services) == 0 {
		services = s.Names()
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range services {
		for _, p := range s.Services[n] {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ReadSketch reads path leniently (see Sketch), with the files it
// includes (those that do not parse are left out).
func ReadSketch(path string) (Sketch, error) {
	sk := Sketch{Services: map[string][]string{}, Groups: map[string][]string{}}
	err := sk.read(path, map[string]bool{})
	sort.Strings(sk.Autostart)
	return sk, err
}

func (sk *Sketch) read(path string, seen map[string]bool) error {
	if seen[realPath(path)] || len(seen) > maxIncludedFiles {
		return nil
	}
	seen[realPath(path)] = true
	src, err := readRegular(path, maxIncludedSize)
	if err != nil {
		return err
	}
	var doc struct {
		Services map[string]any `toml:"services"`
		Include  any            `toml:"include"`
		Groups   map[string]any `toml:"groups"`
	}
	if _, err := toml.Decode(src, &doc); err != nil {
		return err
	}
	for g, v := range doc.Groups {
		if list, ok := v.([]any); ok {
			for _, m := range list {
				if s, ok := m.(string); ok {
					sk.Groups[g] = append(sk.Groups[g], s)
				}
			}
		}
	}
	pats, _ := includePatterns(doc.Include)
	for _, pat := range pats {
		abs := absPath(pat, filepath.Dir(path))
		matches := []string{abs}
		if strings.ContainsAny(pat, `*?[`) {
			matches, _ = filepath.Glob(abs)
			sort.Strings(matches)
		}
		for _, m := range matches {
			sk.read(m, seen) // lenient: a broken included file is left out
		}
	}
	for name, v := range doc.Services {
		t, _ := v.(map[string]any)
		var profiles []string
		if ps, ok := t["profiles"].(map[string]any); ok {
			for p := range ps {
				profiles = append(profiles, p)
			}
		}
		sort.Strings(profiles)
		sk.Services[name] = profiles
		if a, ok := t["autostart"].(bool); !ok || a {
			sk.Autostart = append(sk.Autostart, name)
		}
	}
	return nil
}
