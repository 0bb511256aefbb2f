// Command corral supervises programs so that they and every process they
// spawn are contained and can always be stopped completely.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/demo"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	// corral demo runs its fixture tree by re-running this binary.
	testproc.Main()
	os.Exit(run(os.Args[1:]))
}

// Exit codes, documented in README.md.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitLeft     = 3 // processes survived a stop or shutdown
	exitNoDaemon = 4 // no daemon answers for this state directory
)

var (
	errUsage = errors.New("usage")
	// errLeft marks a result whose survivors were already printed.
	errLeft = errors.New("supervised processes survived")
)

func run(args []string) int {
	root := newRoot()
	root.SetArgs(args)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	err := root.ExecuteContext(ctx)
	if err != nil && (strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "accepts ") ||
		strings.HasPrefix(err.Error(), "requires ")) {
		err = fmt.Errorf("%w: %v", errUsage, err)
	}
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "corral:", err)
	return exitCode(err)
}

// exitCode maps an error to the exit code. The daemon's error codes fall in
// the same classes as the CLI's own errors: a stop that could not empty a
// tree left processes (3); an unknown service, profile or value is a usage
// error (2); every other failure of a service, a timeout included, whether
// the daemon's or the CLI's own deadline, is 1 (a bad file given to reload
// too, as to the daemon). When several services failed (up), the first
// class in this order wins: 3, 2, 4, 1.
func exitCode(err error) int {
	switch {
	case errors.Is(err, demo.ErrLeft) || errors.Is(err, proctree.ErrNotEmpty) || errors.Is(err, errLeft) ||
		hasCode(err, client.CodeStopIncomplete):
		return exitLeft
	case errors.Is(err, errUsage) || hasCode(err, client.CodeUnknownService, client.CodeBadRequest):
		return exitUsage
	case errors.Is(err, client.ErrNoDaemon):
		return exitNoDaemon
	default:
		return exitFailure
	}
}

// hasCode reports whether any daemon error in err's tree has one of codes.
func hasCode(err error, codes ...string) bool {
	if e, ok := err.(*client.Error); ok && slices.Contains(codes, e.Code) {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if hasCode(e, codes...) {
				return true
			}
		}
	case interface{ Unwrap() error }:
		return hasCode(u.Unwrap(), codes...)
	}
	return false
}

// globals are the flags every command shares.
type globals struct {
	config      string
	stateDir    string
	containment string
	json        bool
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "corral",
		Short: "A process supervisor whose programs, and everything they spawn, can always be stopped completely",
		Long: `corral runs the services of corral.toml so that each one and every process it
spawns stay in one container, and every stop, restart, crash or shutdown
leaves nothing behind. See README.md and docs/.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w: %v (see corral %s --help)", errUsage, err, c.Name())
	})
	pf := root.PersistentFlags()
	pf.StringVarP(&g.config, "config", "c", "corral.toml", "configuration file")
	pf.StringVar(&g.stateDir, "state-dir", "", "state directory (default: .corral beside the configuration file)")
	pf.StringVar(&g.containment, "containment", "auto", "containment mechanism: auto, cgroup or pgroup (also $CORRAL_CONTAINMENT)")

	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print corral's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "corral %s (%s, %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "demo",
		Short: "Supervise a built-in WebUI-like tree and prove that stopping it leaves nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.parseContainment()
			if err != nil {
				return err
			}
			_, err = demo.Run(cmd.Context(), cmd.OutOrStdout(), demo.Options{Containment: c})
			return err
		},
	})
	addDaemonCommands(root, g)
	addServiceCommands(root, g)
	return root
}

func (g *globals) parseContainment() (proctree.Containment, error) {
	c, err := proctree.ParseContainment(g.containment)
	if err != nil {
		return c, fmt.Errorf("%w: %v", errUsage, err)
	}
	return c, nil
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
