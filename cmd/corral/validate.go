package main

import (
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

// addValidation refuses bad flag values before a command acts (exit 2):
// a --timeout that is not positive, a negative -n/--lines. Wired into
// every command that has such a flag, after all are added.
func addValidation(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		timeout, lines := c.Flags().Lookup("timeout"), c.Flags().Lookup("lines")
		if timeout == nil && lines == nil {
			return
		}
		next := c.PreRunE
		c.PreRunE = func(cmd *cobra.Command, args []string) error {
			if timeout != nil && timeout.Value.Type() == "duration" {
				if d, err := time.ParseDuration(timeout.Value.String()); err == nil && d <= 0 {
					return usageErr("%s --timeout %s: must be more than 0 (e.g. 30s, 5m)", cmd.Name(), timeout.Value)
				}
			}
			if lines != nil {
				if n, err := strconv.Atoi(lines.Value.String()); err == nil && n < 0 {
					return usageErr("%s -n %s: must be 0 (everything kept) or more", cmd.Name(), lines.Value)
				}
			}
			if next != nil {
				return next(cmd, args)
			}
			return nil
		}
	}
	walk(root)
}
