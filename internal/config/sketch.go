package config

import (
	"os"
	"sort"

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

// ReadSketch reads path leniently (see Sketch).
func ReadSketch(path string) (Sketch, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return Sketch{}, err
	}
	var doc struct {
		Services map[string]any `toml:"services"`
	}
	if _, err := toml.Decode(string(src), &doc); err != nil {
		return Sketch{}, err
	}
	sk := Sketch{Services: map[string][]string{}}
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
	sort.Strings(sk.Autostart)
	return sk, nil
}
