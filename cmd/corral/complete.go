package main

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/internal/config"
)

// Shell completion (corral completion bash|zsh|fish|powershell) completes
// service and profile names from the configuration file, read leniently
// (a file being edited still completes); it never asks, let alone starts,
// a daemon.

// serviceArgs is how many service names each command takes (0: any).
var serviceArgs = map[string]int{
	"ensure": 1, "status": 1, "logs": 0, "bundle": 1,
	"start": 0, "stop": 0, "restart": 0, "up": 0, "health": 0,
}

// completeServices completes the configuration's service names, each once.
func (g *globals) completeServices(limit int) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if limit > 0 && len(args) >= limit {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		sk, err := config.ReadSketch(g.config)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, n := range sk.Names() {
			if strings.HasPrefix(n, toComplete) && !slices.Contains(args, n) {
				out = append(out, n)
			}
		}
		for _, gname := range sortedGroups(sk.Groups) {
			if ref := "@" + gname; strings.HasPrefix(ref, toComplete) && !slices.Contains(args, ref) {
				out = append(out, ref)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeProfiles completes the profiles of the services already named
// (of every service when none is).
func (g *globals) completeProfiles(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	sk, err := config.ReadSketch(g.config)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, p := range sk.Profiles(args...) {
		if strings.HasPrefix(p, toComplete) {
			out = append(out, p)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// addCompletion wires completion into every command of root.
func addCompletion(root *cobra.Command, g *globals) {
	root.MarkPersistentFlagFilename("config", "toml")
	root.MarkPersistentFlagDirname("state-dir")
	root.RegisterFlagCompletionFunc("containment", cobra.FixedCompletions([]cobra.Completion{"auto", "cgroup", "pgroup"}, cobra.ShellCompDirectiveNoFileComp))
	for _, c := range root.Commands() {
		if n, ok := serviceArgs[c.Name()]; ok && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = g.completeServices(n)
		}
		if c.Flags().Lookup("profile") != nil {
			c.RegisterFlagCompletionFunc("profile", g.completeProfiles)
		}
		if c.Name() == "init" {
			c.RegisterFlagCompletionFunc("preset", cobra.FixedCompletions([]cobra.Completion{"a1111", "forge", "comfyui", "none"}, cobra.ShellCompDirectiveNoFileComp))
			c.ValidArgsFunction = func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return nil, cobra.ShellCompDirectiveFilterDirs
			}
		}
	}
}

func sortedGroups(groups map[string][]string) []string {
	out := make([]string, 0, len(groups))
	for g := range groups {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}
