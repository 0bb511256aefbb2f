package main

import (
	"slices"
	"strings"

	"github.com/corral-sh/corral/internal/config"
)

// Groups (groups = { sd = ["webui", "comfyui"] } in corral.toml): @sd
// stands for its services wherever a command takes service names. The CLI
// expands it from the configuration file (-c), the file the daemon reads:
// the daemon itself knows only services, so every client sees one meaning
// of a name.

func hasGroupRef(names []string) bool {
	return slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "@") })
}

// expand replaces each @GROUP of names with the group's services. An
// unknown group is a usage error (exit 2) with a hint.
func (g *globals) expand(names []string) ([]string, error) {
	if !hasGroupRef(names) {
		return names, nil
	}
	sk, err := config.ReadSketch(g.config)
	if err != nil {
		ref := names[slices.IndexFunc(names, func(n string) bool { return strings.HasPrefix(n, "@") })]
		return nil, usageErr("%s: groups are defined in the configuration file, and %s cannot be read: %v (give the file with -c)", ref, g.config, err)
	}
	return expandWith(names, sk.Groups, sk.Names())
}

// expandWith expands names with the groups of an already loaded file.
func expandWith(names []string, groups map[string][]string, services []string) ([]string, error) {
	out, err := config.Expand(names, groups, services)
	if err != nil {
		return nil, usageErr("%s", strings.TrimPrefix(err.Error(), "config: "))
	}
	return out, nil
}
