// Command corral supervises programs so that they and every process they
// spawn are contained and can always be stopped completely.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/containment"
	"github.com/corral-sh/corral/internal/demo"
	"github.com/corral-sh/corral/internal/fixture"
	"github.com/corral-sh/corral/proctree"
)

// version, commit and date are set at build time (see .goreleaser.yaml):
// -ldflags "-X main.version=1.2.3 -X main.commit=<sha> -X main.date=<RFC 3339>".
// Without them, buildVersion and buildCommit fall back to the build info.
var (
	version = ""
	commit  = ""
	date    = ""
)

func main() {
	// corral demo runs its fixture tree by re-running this binary.
	fixture.Main()
	os.Exit(run(os.Args[1:]))
}

// Exit codes, documented in README.md.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitLeft     = 3 // processes survived a stop or shutdown
	exitNoDaemon = 4 // no daemon answers for this state directory
	exitDenied   = 5 // the socket is not this user's to use, or is served by another user
	// exitUnverified: nothing was found left, but the tier could not prove
	// it (the output says which case).
	exitUnverified = 6
)

var (
	errUsage = errors.New("usage")
	// errLeft marks a result whose survivors were already printed.
	errLeft = errors.New("supervised processes survived")
	// errUnverified marks a stop or shutdown whose emptiness its tier
	// could not prove; the reason was already printed.
	errUnverified = errors.New("not verified")
)

func run(args []string) int { return runIO(args, os.Stdout, os.Stderr) }

// runIO runs the CLI with its output going to stdout and stderr (tests
// capture them).
func runIO(args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	addCompletionCommand(root)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil && (strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "accepts ") ||
		strings.HasPrefix(err.Error(), "requires ") || strings.HasPrefix(err.Error(), "invalid argument ")) {
		err = fmt.Errorf("%w: %v", errUsage, err)
	}
	if err == nil {
		return exitOK
	}
	err = explainNoDaemon(cmd, err)
	fmt.Fprintln(stderr, "corral:", err)
	return exitCode(err)
}

// exitCode maps an error to the exit code. The daemon's error codes fall in
// the same classes as the CLI's own errors: a stop that could not empty a
// tree left processes (3); an unknown service, profile or value is a usage
// error (2); every other failure of a service, a timeout included, whether
// the daemon's or the CLI's own deadline, is 1 (a bad file given to reload
// too, as to the daemon). A socket this user may not open, or one served
// by another user than expected, is 5: not 4, so that a script does not
// answer it by starting a second daemon. When several services failed
// (up), the first class in this order wins: 3, 2, 5, 4, 1.
func exitCode(err error) int {
	switch {
	case errors.Is(err, demo.ErrLeft) || errors.Is(err, proctree.ErrNotEmpty) || errors.Is(err, errLeft) ||
		hasCode(err, client.CodeStopIncomplete, client.CodeLeftover):
		return exitLeft
	case errors.Is(err, errUnverified):
		return exitUnverified
	case errors.Is(err, errUsage) || hasCode(err, client.CodeUnknownService, client.CodeBadRequest):
		return exitUsage
	case errors.Is(err, client.ErrPermission) || errors.Is(err, client.ErrUntrusted):
		return exitDenied
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
		Version:       versionLine(),
	}
	root.SetVersionTemplate("corral {{.Version}}\n") // corral --version prints what corral version does
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
			fmt.Fprintf(cmd.OutOrStdout(), "corral %s\n", versionLine())
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
			if c, err = containment.FromEnv(c); err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
			_, err = demo.Run(cmd.Context(), cmd.OutOrStdout(), demo.Options{Containment: c})
			return err
		},
	})
	addDaemonCommands(root, g)
	addServiceCommands(root, g)
	addHealthCommand(root, g)
	addCheckCommand(root, g)
	addInitCommand(root, g)
	addImportCommand(root, g)
	addBootServiceCommands(root, g)
	addDashboardCommands(root, g)
	addTopCommand(root, g)
	// Keep these last: they reach every command added above.
	addExamples(root)
	addCompletion(root, g)
	addValidation(root)
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

// buildCommit returns the commit and its date: the ldflags' if set, else the
// vcs.revision and vcs.time a go build in a git checkout records (with
// "-dirty" for a modified tree); empty when neither is known (go install
// @latest records none).
func buildCommit() (rev, when string) {
	if commit != "" {
		return commit, date
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" && modified {
			rev += "-dirty"
		}
	}
	return rev, when
}

// versionLine is what corral version and corral --version print after
// "corral ": 0.1.0 (commit <sha>, built <date>, go1.26.0, linux/amd64).
func versionLine() string {
	var details []string
	rev, when := buildCommit()
	if rev != "" {
		details = append(details, "commit "+rev)
	}
	if when != "" {
		details = append(details, "built "+when)
	}
	details = append(details, runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
	return buildVersion() + " (" + strings.Join(details, ", ") + ")"
}
