package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/client"
)

// Launch options on the command line: `corral start|ensure|restart SERVICE
// [--env NAME=value]... [-- ARGS...]` gives the instance its own arguments
// (everything after --, appended after the command and the profile's) and
// environment (layered over the service's env); docs/api.md, "Launch
// options". A bare -- gives no arguments (a restart then drops the
// instance's); leaving it out keeps or accepts what runs.

// launchUsage is the part of a Use line for the launch options.
const launchUsage = " [--env NAME=value]... [-- ARGS...]"

// services is the SERVICE arguments of a command that takes launch
// options: those before --.
func services(cmd *cobra.Command, args []string) []string {
	if d := cmd.ArgsLenAtDash(); d >= 0 {
		return args[:d]
	}
	return args
}

// launchArgs checks the number of SERVICE arguments (before --): exactly
// one with one, at least one without.
func launchArgs(one bool) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		n := len(services(cmd, args))
		switch {
		case n == 0:
			return usageErr("%s needs a SERVICE (before --)", cmd.Name())
		case one && n != 1:
			return usageErr("%s takes one SERVICE (before --), got %d: %s", cmd.Name(), n, strings.Join(services(cmd, args), " "))
		}
		return nil
	}
}

// launchOptions puts the launch options of the command line into o.
func launchOptions(cmd *cobra.Command, args, env []string, o *client.StartOptions) error {
	if d := cmd.ArgsLenAtDash(); d >= 0 {
		o.Args = append([]string{}, args[d:]...) // [] for a bare --: none
	}
	if cmd.Flags().Changed("env") {
		o.Env = map[string]string{}
		for _, kv := range env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usageErr("--env %q: write NAME=value (NAME= for an empty value)", kv)
			}
			o.Env[k] = v
		}
	}
	if (o.Args != nil || o.Env != nil) && len(services(cmd, args)) != 1 {
		return usageErr("%s: arguments after -- and --env are one instance's: name one SERVICE, not %d", cmd.Name(), len(services(cmd, args)))
	}
	return nil
}
