package main

import "github.com/spf13/cobra"

// examples are the Example texts of the commands defined without one
// (a command that sets its own keeps it). TestEveryCommandHasExamples
// keeps every visible command covered.
var examples = map[string]string{
	"version": `  corral version
  corral --version`,
	"demo": `  corral demo                          # about 13 s, no setup
  corral demo --containment pgroup     # the process-group tier, as on a host without cgroups`,
	"daemon": `  corral daemon                        # in the foreground; Ctrl-C runs the verified shutdown
  corral daemon --exit-with $PPID      # shut down (verified) when the calling app exits
  corral daemon --print-endpoint       # where a client connects (JSON); starts nothing`,
	"up": `  corral up                            # every autostart service
  corral up webui proxy                # these (and what they start after)
  corral up --exit-with $PPID          # tie the daemon to the app that runs this
  corral -c ~/sd/corral.toml up --timeout 15m`,
	"ensure": `  corral ensure webui                  # ready when it returns; starts it if needed
  corral ensure webui --profile lowvram --restart-if-different
  corral ensure webui --timeout 15m
  corral ensure webui --env HF_TOKEN=hf_... -- --port 7861 --xformers   # this instance's own env and arguments`,
	"start": `  corral start webui
  corral start webui --wait --profile lowvram
  corral start webui -- --listen --port 7861`,
	"restart": `  corral restart webui
  corral restart webui --profile lowvram --wait
  corral restart webui -- --port 7862  # new arguments; its environment is kept
  corral restart webui --               # no arguments of its own any more`,
	"stop": `  corral stop webui                    # returns once its tree is verified empty
  corral stop webui proxy`,
	"status": `  corral status                        # every service
  corral status webui                  # one service and its member tree with RSS
  corral status --json`,
	"logs": `  corral logs webui                    # the last 100 lines
  corral logs webui -f                 # and follow
  corral logs webui -n all > webui.txt # every kept line
  corral logs                          # every service, merged by time
  corral logs -f -n 0                  # every service, only what comes from now on
  corral logs webui --since 10m -t     # the last ten minutes, with times`,
	"events": `  corral events                        # the last 100 events
  corral events -f --json              # follow, one JSON object per line`,
	"reload": `  corral reload                        # after editing corral.toml: applies only what changed
  corral check && corral reload        # see the problems first`,
	"shutdown": `  corral shutdown                      # exit 0 only if nothing supervised is left
  corral shutdown || echo "survivors named above"`,
	"reap": `  corral reap --dry-run                # what earlier runs left, stopping nothing
  corral reap`,
	"bundle": `  corral bundle                        # every service
  corral bundle webui                  # one service`,
	"doctor": `  corral doctor
  corral doctor --json`,
	"completion": `  source <(corral completion bash)
  corral completion zsh > "${fpath[1]}/_corral"
  corral completion fish > ~/.config/fish/completions/corral.fish
  corral completion powershell | Out-String | Invoke-Expression`,
	"completion bash": `  source <(corral completion bash)
  corral completion bash > /etc/bash_completion.d/corral`,
	"completion zsh":        `  corral completion zsh > "${fpath[1]}/_corral"`,
	"completion fish":       `  corral completion fish > ~/.config/fish/completions/corral.fish`,
	"completion powershell": `  corral completion powershell | Out-String | Invoke-Expression`,
}

// addCompletionCommand adds cobra's completion command (bash, zsh, fish,
// powershell) with examples, once root's output is set: cobra's scripts
// are written to the writer root has when it is added.
func addCompletionCommand(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		if c.Run == nil && c.RunE == nil {
			// Runnable, so that an unknown shell is refused (exit 2) rather
			// than answered with the help and exit 0.
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
		if c.Example == "" {
			c.Example = examples["completion"]
		}
		for _, sub := range c.Commands() {
			if sub.Example == "" {
				sub.Example = examples["completion "+sub.Name()]
			}
		}
	}
}

// addExamples gives every command without an Example its own.
func addExamples(root *cobra.Command) {
	if root.Example == "" {
		root.Example = `  corral init && corral check && corral up   # a first configuration, checked, running
  corral status
  corral restart webui --profile lowvram
  corral shutdown`
	}
	var walk func(prefix string, c *cobra.Command)
	walk = func(prefix string, c *cobra.Command) {
		for _, sub := range c.Commands() {
			name := prefix + sub.Name()
			if ex, ok := examples[name]; ok && sub.Example == "" {
				sub.Example = ex
			}
			walk(name+" ", sub)
		}
	}
	walk("", root)
}
