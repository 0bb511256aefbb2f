package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/importer"
)

// importInputError is an input corral import cannot read (a missing file,
// a syntax error at file:line, a JavaScript file without node): exit 2,
// like other bad input to the CLI, without the "usage" word.
type importInputError struct{ err error }

func (e *importInputError) Error() string   { return e.err.Error() }
func (e *importInputError) Unwrap() []error { return []error{e.err, errUsage} }

func addImportCommand(root *cobra.Command, g *globals) {
	var output, report, pm2Env string
	var force bool
	c := &cobra.Command{
		Use:   "import [supervisord|procfile|pm2] FILE",
		Short: "Write a corral.toml from a supervisord.conf, a Procfile or a PM2 ecosystem file",
		Long: `import reads another supervisor's configuration and writes a commented
corral.toml (-o, default the -c file, ./corral.toml): each service says where
it came from (file:line), and every setting corral has no exact equivalent
for is a comment where it belongs and a line of the report (stderr, or
--report FILE): "not imported", "approximated" (mapped to the nearest corral
setting, with the difference) or "not needed" (corral does it by itself).
Nothing is dropped silently.

  supervisord   supervisord.conf with its [include] files; %(ENV_X)s is
                expanded from the environment of the import
  procfile      a Procfile and the .env beside it (foreman, overmind), which
                becomes env_file (read at each start); PORT as they assign
                it (5000, 5100, ...; the base from .env's PORT)
  pm2           ecosystem.config.js (evaluated with node), .json or .yaml;
                --env NAME takes env_NAME, as pm2 start --env NAME does

The format is taken from the file's name when not given. An existing file is
never replaced without --force. The written file is checked as the daemon
would load it; a problem (a directory that does not exist here, a user =
other than yours when not run as root) is named with its line, and import
then exits 1. Exit 2: the input cannot be read.`,
		Example: `  corral import /etc/supervisor/supervisord.conf   # ./corral.toml, report on stderr
  corral import Procfile -o app/corral.toml
  corral import pm2 ecosystem.config.js --env production --report import.txt
  corral import supervisord app.ini -o - | less      # the file on stdout`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[len(args)-1]
			var format importer.Format
			if len(args) == 2 {
				f, err := importer.ParseFormat(args[0])
				if err != nil {
					return &importInputError{fmt.Errorf("import %s: unknown format; give supervisord, procfile or pm2", args[0])}
				}
				format = f
			} else {
				f, ok := importer.Detect(file)
				if !ok {
					return &importInputError{fmt.Errorf("import %s: cannot tell the format from the name; give it: corral import supervisord|procfile|pm2 %s", file, file)}
				}
				format = f
			}
			if output == "" {
				output = g.config
			}
			toStdout := output == "-"
			outAbs := ""
			if toStdout {
				wd, err := os.Getwd()
				if err != nil {
					return err
				}
				outAbs = filepath.Join(wd, "corral.toml")
			} else {
				var err error
				if outAbs, err = filepath.Abs(output); err != nil {
					return err
				}
				if _, err := os.Stat(outAbs); err == nil && !force {
					return fmt.Errorf("import: %s exists already; nothing was written: pass --force to replace it, or -o FILE to write another file", output)
				}
				if fi, err := os.Stat(filepath.Dir(outAbs)); err != nil || !fi.IsDir() {
					return fmt.Errorf("import: the directory of %s (%s) does not exist; nothing was written: create it first", output, filepath.Dir(outAbs))
				}
			}

			res, err := importer.Import(cmd.Context(), format, file, importer.Options{OutDir: filepath.Dir(outAbs), PM2Env: pm2Env})
			if err != nil {
				return &importInputError{fmt.Errorf("import: %v; nothing was written", strings.TrimPrefix(err.Error(), "importer: "))}
			}
			text := res.TOML()

			errw := cmd.ErrOrStderr()
			shown := output
			if toStdout {
				shown = "the file on stdout"
				if _, err := cmd.OutOrStdout().Write(text); err != nil {
					return err
				}
			} else if err := writeImported(outAbs, text); err != nil {
				return err
			}
			var rep bytes.Buffer
			res.Report(&rep, shown)
			if report != "" {
				if err := os.WriteFile(report, rep.Bytes(), 0o644); err != nil {
					return fmt.Errorf("import: report: %w (%s was written)", err, shown)
				}
			} else {
				io.Copy(errw, &rep)
			}

			// What was written must load as the daemon loads it; a value
			// that is right for the source's machine but not this one (a
			// directory that does not exist here) is said with its line.
			if _, err := config.Parse(outAbs, string(text)); err != nil {
				var lines []string
				for _, l := range strings.Split(err.Error(), "\n") {
					if toStdout {
						l = strings.Replace(l, outAbs, "corral.toml", 1)
					}
					lines = append(lines, "  "+strings.TrimPrefix(l, "config: "))
				}
				return fmt.Errorf("import: %s was written, but corral would not load it here:\n%s\nfix these lines (or create what they name), then check it with: corral check",
					shown, strings.Join(lines, "\n"))
			}
			summary := errw
			if !toStdout {
				summary = cmd.OutOrStdout()
			}
			d, a, m := res.Counts()
			where := "above"
			if report != "" {
				where = "in " + report
			}
			services := fmt.Sprintf("%d services", len(res.Services))
			if len(res.Services) == 1 {
				services = "1 service"
			}
			fmt.Fprintf(summary, "wrote %s: %s from %s (%d not imported, %d approximated, %d not needed: see the report %s); check it with: corral check; start it with: corral up\n",
				shown, services, file, d, a, m, where)
			return nil
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "the corral.toml to write (default: the -c file); - writes it to stdout")
	c.Flags().BoolVar(&force, "force", false, "replace an existing file")
	c.Flags().StringVar(&report, "report", "", "write the report to this file instead of stderr")
	c.Flags().StringVar(&pm2Env, "env", "", "pm2: also take env_NAME, as pm2 start --env NAME does")
	root.AddCommand(c)
}

// writeImported writes text to path through a file beside it renamed over
// it, so that a reader never sees half of a file.
func writeImported(path string, text []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".corral.toml-*")
	if err != nil {
		return fmt.Errorf("import: %w; nothing was written", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if _, err := tmp.Write(text); err != nil {
		tmp.Close()
		return fmt.Errorf("import: write %s: %w; nothing was written", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("import: %w; nothing was written", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("import: %w; nothing was written", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("import: %s: permission denied; nothing was written", path)
		}
		return fmt.Errorf("import: %w; nothing was written", err)
	}
	return nil
}
