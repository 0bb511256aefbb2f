package bootsvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// A Plan is what an install or uninstall does, in order: files to write or
// remove and the manager's commands to run. It is built without touching
// anything, so that --dry-run prints exactly what Apply would do.
type Plan struct {
	Steps []Step
	// Live reports why the manager cannot take commands here (nil: it
	// can): systemctl missing, or no systemd manager running (a container,
	// a session without systemd --user). Steps marked Live then are not
	// run but printed as what to run once it can.
	Live func(ctx context.Context, run Runner) error
	// Done is printed once every step ran.
	Done string
	// Later, when set, is printed instead of Done when Live steps were
	// skipped, with those steps' commands to run once the manager can.
	// Unset, the skipped steps are not needed later (stopping what a
	// manager that does not run cannot be running) and Done is printed.
	Later string
}

// Step is one action of a Plan: Write, Remove, Call or Run (exactly one).
type Step struct {
	// Write creates or replaces the file at Write with Data (mode Mode),
	// creating its directory.
	Write string
	Data  []byte
	Mode  fs.FileMode
	// Remove deletes the file at Remove; a missing file is no error.
	Remove string
	// Call runs an in-process action (a Windows service is created
	// through the SCM's API, not a command); Says describes it.
	Call func(ctx context.Context, w io.Writer) error
	Says string
	// Run executes Argv. When Input is set it is written to a temporary
	// file, named by the argument InputArg of Argv (schtasks /XML takes a
	// file, not standard input), and removed after.
	Argv     []string
	Input    []byte
	InputArg int
	// Tolerate: a failure is printed and the plan goes on (disabling what
	// is not loaded).
	Tolerate bool
	// Live: runs only when the manager is live (Plan.Live); Offline: only
	// when it is not.
	Live    bool
	Offline bool
	// Why is said before the step.
	Why string
}

// Runner executes a command and returns its combined output. Tests
// replace it; nil means os/exec.
type Runner func(ctx context.Context, argv []string) ([]byte, error)

func execRunner(ctx context.Context, argv []string) ([]byte, error) {
	return exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
}

// Apply carries out p, saying what it does on w; with dryRun it only says
// what it would do and touches nothing (it may ask the manager whether it
// runs, a query that changes nothing).
func Apply(ctx context.Context, w io.Writer, p Plan, dryRun bool, run Runner) error {
	if run == nil {
		run = execRunner
	}
	var liveErr error
	if p.Live != nil && hasLive(p) {
		liveErr = p.Live(ctx, run)
	}
	var later []string
	for _, st := range p.Steps {
		if st.Offline && liveErr == nil {
			continue
		}
		if st.Live && liveErr != nil {
			later = append(later, strings.TrimPrefix(st.describe(), "run: "))
			if dryRun {
				fmt.Fprintf(w, "would not run now: %s\n", later[len(later)-1])
			}
			continue
		}
		if st.Why != "" {
			fmt.Fprintf(w, "# %s\n", st.Why)
		}
		if dryRun {
			if st.Write != "" {
				fmt.Fprintf(w, "would write %s (mode %04o):\n%s", st.Write, st.Mode.Perm(), indent(string(st.Data)))
			} else {
				fmt.Fprintf(w, "would %s\n", st.describe())
			}
			continue
		}
		if err := st.apply(ctx, w, run); err != nil {
			if !st.Tolerate {
				return err
			}
			fmt.Fprintf(w, "  (%v: going on)\n", err)
		}
	}
	if dryRun {
		if liveErr != nil {
			fmt.Fprintf(w, "# the service manager cannot take commands here: %v\n", liveErr)
		}
		fmt.Fprintln(w, "dry run: nothing was written or run")
		return nil
	}
	if len(later) > 0 && p.Later != "" {
		fmt.Fprintln(w, p.Later)
		fmt.Fprintf(w, "the service manager cannot take commands here (%v); once it can:\n", liveErr)
		for _, d := range later {
			fmt.Fprintf(w, "  %s\n", d)
		}
		return nil
	}
	if p.Done != "" {
		fmt.Fprintln(w, p.Done)
	}
	return nil
}

// describe says what st does, for a dry run and for the steps left for
// later.
func (st Step) describe() string {
	switch {
	case st.Call != nil:
		return st.Says
	case st.Write != "":
		return "write " + st.Write
	case st.Remove != "":
		return "remove " + st.Remove
	case st.Input != nil:
		return "run: " + shellWords(replaceArg(st.Argv, st.InputArg, "<a temporary file holding the XML above, in UTF-16>"))
	default:
		return "run: " + shellWords(st.Argv)
	}
}

func (st Step) apply(ctx context.Context, w io.Writer, run Runner) error {
	switch {
	case st.Call != nil:
		fmt.Fprintln(w, st.Says)
		return st.Call(ctx, w)
	case st.Write != "":
		if err := writeFile(st.Write, st.Data, st.Mode); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %s\n", st.Write)
	case st.Remove != "":
		switch err := os.Remove(st.Remove); {
		case err == nil:
			fmt.Fprintf(w, "removed %s\n", st.Remove)
		case errors.Is(err, fs.ErrNotExist):
			fmt.Fprintf(w, "%s was not there\n", st.Remove)
		default:
			return fmt.Errorf("bootsvc: %w", err)
		}
	case len(st.Argv) > 0:
		fmt.Fprintln(w, st.describe())
		out, err := runStep(ctx, run, st)
		w.Write(indentBytes(out))
		if err != nil {
			return fmt.Errorf("bootsvc: %s: %w", shellWords(st.Argv[:1]), err)
		}
	}
	return nil
}

func hasLive(p Plan) bool {
	for _, st := range p.Steps {
		if st.Live || st.Offline {
			return true
		}
	}
	return false
}

func runStep(ctx context.Context, run Runner, st Step) ([]byte, error) {
	if run == nil {
		run = execRunner
	}
	argv := st.Argv
	if st.Input != nil {
		f, err := os.CreateTemp("", "corral-service-*.xml")
		if err != nil {
			return nil, fmt.Errorf("bootsvc: %w", err)
		}
		defer os.Remove(f.Name())
		_, werr := f.Write(st.Input)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, fmt.Errorf("bootsvc: %w", werr)
		}
		argv = replaceArg(argv, st.InputArg, f.Name())
	}
	return run(ctx, argv)
}

func replaceArg(argv []string, i int, v string) []string {
	out := append([]string(nil), argv...)
	if i >= 0 && i < len(out) {
		out[i] = v
	}
	return out
}

// writeFile replaces path atomically: a manager that reads the file while
// it is written (launchd watches its directories) sees the old or the new
// definition, never half of one.
func writeFile(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bootsvc: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("bootsvc: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("bootsvc: write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		f.Close()
		return fmt.Errorf("bootsvc: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bootsvc: write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("bootsvc: %w", err)
	}
	return nil
}

func indent(s string) string {
	return string(indentBytes([]byte(s)))
}

func indentBytes(b []byte) []byte {
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 {
		return nil
	}
	var out bytes.Buffer
	for _, l := range bytes.Split(b, []byte("\n")) {
		out.WriteString("  ")
		out.Write(l)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// shellWords shows argv as the platform's shell would take it, for the
// reader to copy: POSIX single quotes where needed, or on Windows the
// command line the program receives.
func shellWords(argv []string) string {
	if runtime.GOOS == "windows" {
		return WindowsCommandLine(argv)
	}
	words := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_.,:=@+-%", r))
		}) {
			words[i] = a
			continue
		}
		words[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(words, " ")
}
