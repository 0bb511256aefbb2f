package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/internal/config"
)

// checkout is a program init recognised in a directory.
type checkout struct {
	preset   string   // a1111, forge, comfyui; "" for none
	name     string   // the service's name
	what     string   // what it is, for people
	dir      string   // where it runs
	evidence []string // the files that gave it away
	python   string   // ComfyUI: the interpreter to run main.py with
}

func isFile(p string) bool { st, err := os.Stat(p); return err == nil && st.Mode().IsRegular() }
func isDir(p string) bool  { st, err := os.Stat(p); return err == nil && st.IsDir() }

// detectCheckout recognises a Stable Diffusion WebUI (AUTOMATIC1111 or
// Forge) or ComfyUI checkout in dir: the WebUI by its launch script
// (webui.sh or webui.bat) beside launch.py and modules/, Forge by its
// modules_forge/ too, ComfyUI by main.py beside comfy/ (or the Windows
// portable build's ComfyUI/ beside python_embeded/).
func detectCheckout(dir string) (checkout, bool) {
	has := func(p string) bool { return isFile(filepath.Join(dir, p)) }
	hasDir := func(p string) bool { return isDir(filepath.Join(dir, p)) }
	if (has("webui.sh") || has("webui.bat")) && has("launch.py") && hasDir("modules") {
		c := checkout{preset: "a1111", name: "webui", what: "Stable Diffusion WebUI (AUTOMATIC1111)", dir: dir}
		for _, f := range []string{"webui.sh", "webui.bat"} {
			if has(f) {
				c.evidence = append(c.evidence, f)
			}
		}
		c.evidence = append(c.evidence, "launch.py", "modules/")
		if hasDir("modules_forge") {
			c.preset, c.name, c.what = "forge", "forge", "Stable Diffusion WebUI Forge"
			c.evidence = append(c.evidence, "modules_forge/")
		}
		return c, true
	}
	if has("main.py") && hasDir("comfy") {
		return checkout{preset: "comfyui", name: "comfyui", what: "ComfyUI", dir: dir,
			evidence: []string{"main.py", "comfy/"}, python: venvPython(dir)}, true
	}
	if isFile(filepath.Join(dir, "ComfyUI", "main.py")) && hasDir(filepath.Join("ComfyUI", "comfy")) {
		c := checkout{preset: "comfyui", name: "comfyui", what: "ComfyUI (portable)", dir: filepath.Join(dir, "ComfyUI"),
			evidence: []string{filepath.Join("ComfyUI", "main.py"), filepath.Join("ComfyUI", "comfy") + "/"}, python: venvPython(filepath.Join(dir, "ComfyUI"))}
		if p := filepath.Join(dir, "python_embeded", "python.exe"); isFile(p) {
			c.python = p
			c.evidence = append(c.evidence, filepath.Join("python_embeded", "python.exe"))
		}
		return c, true
	}
	return checkout{}, false
}

// venvPython returns the interpreter of a virtual environment in dir, or
// the system's.
func venvPython(dir string) string {
	for _, v := range []string{"venv", ".venv"} {
		p := filepath.Join(dir, v, "bin", "python")
		if runtime.GOOS == "windows" {
			p = filepath.Join(dir, v, "Scripts", "python.exe")
		}
		if isFile(p) {
			return p
		}
	}
	if runtime.GOOS == "windows" {
		return "python"
	}
	return "python3"
}

// tomlString writes s as a TOML string: a literal string ('...') when it
// holds backslashes (Windows paths) and no quote, else a basic one.
func tomlString(s string) string {
	if strings.Contains(s, `\`) && !strings.ContainsAny(s, "'\n\r") {
		return "'" + s + "'"
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func tomlList(items ...string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = tomlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// relDir writes dir as the configuration file (in base) should name it:
// relative to the file when inside its directory, ~/ under the home
// directory, else absolute.
func relDir(dir, base string) string {
	if rel, err := filepath.Rel(base, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return filepath.ToSlash(rel)
	}
	if home, err := os.UserHomeDir(); err == nil {
		if rel, err := filepath.Rel(home, dir); err == nil && !strings.HasPrefix(rel, "..") && runtime.GOOS != "windows" {
			return "~/" + filepath.ToSlash(rel)
		}
	}
	return dir
}

const initHeader = `# corral.toml: the services corral supervises. Every key is listed in
# docs/configuration.md; check the file with: corral check; start with: corral up.

[corral]
# containment = "auto"      # cgroup v2 where writable, else process groups (corral doctor says which)
# shutdown_timeout = "1m"   # bound on a verified shutdown of every service
`

// initFile writes the configuration for c (the example service when c has
// no preset); base is the directory of the file.
func initFile(c checkout, base string) string {
	var b strings.Builder
	b.WriteString(initHeader)
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	dir := relDir(c.dir, base)
	switch c.preset {
	case "a1111", "forge":
		p("")
		p("# %s, found in %s (%s).", c.what, c.dir, strings.Join(c.evidence, ", "))
		p("[services.%s]", c.name)
		p("preset = %q   # ready once /sdapi/v1/options answers and it logs \"Running on local URL\"; stop hook; \"Apply and restart UI\"", c.preset)
		if runtime.GOOS == "windows" {
			p("# webui.bat, not webui-user.bat: that one sets COMMANDLINE_ARGS itself; put its settings in env below.")
			p("shell = \"webui.bat\"")
		} else {
			p("# webui.sh reads webui-user.sh: a COMMANDLINE_ARGS exported there replaces the one below.")
			p("command = [\"bash\", \"webui.sh\"]")
		}
		p("dir = %s", tomlString(dir))
		p("# --api-server-stop lets corral ask the WebUI to stop itself before it signals the tree.")
		p("env = { COMMANDLINE_ARGS = \"--api --api-server-stop\", PYTHONUNBUFFERED = \"1\" }")
		p("# port = 7860              # when it listens elsewhere (--port)")
		p("profiles = { lowvram = [\"--medvram-sdxl\"] }   # corral restart %s --profile lowvram", c.name)
		p("restart = { policy = \"on-failure\" }   # backoff, max_backoff, burst, window: docs/configuration.md")
		p("# limits = { processes = 512, memory = \"24GiB\" }   # runaway containment over the whole tree")
	case "comfyui":
		p("")
		p("# %s, found in %s (%s).", c.what, c.dir, strings.Join(c.evidence, ", "))
		p("[services.%s]", c.name)
		p("preset = \"comfyui\"   # ready once /system_stats answers; ComfyUI-Manager's restart hands over to the new process")
		args := []string{c.python, "main.py"}
		if strings.Contains(c.python, "python_embeded") {
			args = []string{c.python, "-s", "main.py", "--windows-standalone-build"}
		}
		p("command = %s", tomlList(args...))
		p("dir = %s", tomlString(dir))
		p("env = { PYTHONUNBUFFERED = \"1\" }   # its output reaches corral line by line")
		p("# port = 8188              # when it listens elsewhere (--port)")
		p("profiles = { lowvram = [\"--lowvram\"] }   # corral restart %s --profile lowvram", c.name)
		p("restart = { policy = \"on-failure\" }")
	default:
		python := "python3"
		if runtime.GOOS == "windows" {
			python = "python"
		}
		p("")
		p("# An example service: replace its command with your program.")
		p("[services.app]")
		p("command = %s", tomlList(python, "-m", "http.server", "8000", "--bind", "127.0.0.1"))
		p("# shell = \"./start.sh --port 8000\"   # or a command line (/bin/sh -c; cmd.exe on Windows)")
		p("dir = %s                 # where it runs, relative to this file", tomlString(dir))
		p("env = { PYTHONUNBUFFERED = \"1\" }")
		p("# autostart = true                    # started by corral up")
		p("ready = { tcp = \"127.0.0.1:8000\", timeout = \"30s\" }   # ready once the port accepts connections")
		p("# health = { http = \"http://127.0.0.1:8000/\", interval = \"10s\", failures = 3 }")
		p("# restart = { policy = \"on-failure\", backoff = \"100ms\", max_backoff = \"30s\" }")
		p("# stop = { signal = \"TERM\", grace = \"10s\" }")
		p("# profiles = { debug = [\"--debug\"] }   # corral restart app --profile debug")
		p("# limits = { processes = 256, memory = \"8GiB\" }   # runaway containment over the whole tree")
	}
	return b.String()
}

func addInitCommand(root *cobra.Command, g *globals) {
	var force bool
	var preset string
	c := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a commented corral.toml, with the WebUI or ComfyUI preset when DIR holds one",
		Long: `init writes the configuration file (-c, default ./corral.toml) with comments
on every key it sets. It looks at DIR (default: the file's directory) for a
program it knows: a Stable Diffusion WebUI checkout (webui.sh or webui.bat
beside launch.py and modules/; Forge also has modules_forge/) or ComfyUI
(main.py beside comfy/, or the portable build's ComfyUI/), and writes a
service with its preset; otherwise an example service to edit. The file
passes corral check as written. An existing file is never replaced
without --force.`,
		Example: `  cd ~/stable-diffusion-webui && corral init    # service webui, preset a1111
  corral init ~/ComfyUI                         # ./corral.toml running ComfyUI in ~/ComfyUI
  corral -c app/corral.toml init --force        # replace an existing file
  corral init --preset none                     # the example service, whatever DIR holds`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfgAbs, err := filepath.Abs(g.config)
			if err != nil {
				return err
			}
			base := filepath.Dir(cfgAbs)
			dir := base
			if len(args) == 1 {
				if dir, err = filepath.Abs(args[0]); err != nil {
					return err
				}
				if !isDir(dir) {
					return usageErr("init %s: not a directory: give the directory of the program (its checkout)", args[0])
				}
			}
			if !isDir(base) {
				return usageErr("init: the directory of %s (%s) does not exist: create it first", g.config, base)
			}
			c, found := detectCheckout(dir)
			switch preset {
			case "":
			case "none":
				c, found = checkout{}, false
			case "a1111", "forge", "comfyui":
				if c.preset != preset {
					name := map[string]string{"a1111": "webui", "forge": "forge", "comfyui": "comfyui"}[preset]
					what := map[string]string{"a1111": "Stable Diffusion WebUI (AUTOMATIC1111)", "forge": "Stable Diffusion WebUI Forge", "comfyui": "ComfyUI"}[preset]
					c = checkout{preset: preset, name: name, what: what, dir: dir, evidence: []string{"--preset " + preset}, python: venvPython(dir)}
				}
				found = true
			default:
				return usageErr("init --preset %q: unknown preset%s (known: a1111, forge, comfyui, none)", preset,
					config.DidYouMean(preset, []string{"a1111", "forge", "comfyui", "none"}))
			}
			if !found {
				c = checkout{dir: dir}
			}
			text := initFile(c, base)
			// What init writes must pass corral check: never hand out a file
			// the daemon would refuse.
			if _, err := config.Parse(g.config, text); err != nil {
				return fmt.Errorf("init: the file it would write is not valid (a bug of corral init; nothing was written): %w", err)
			}
			if err := writeNew(cfgAbs, g.config, text, force); err != nil {
				return err
			}
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			switch {
			case found && c.evidence[0] == "--preset "+c.preset:
				fmt.Fprintf(errw, "corral: service %q uses preset %s (--preset), running in %s\n", c.name, c.preset, c.dir)
			case found:
				fmt.Fprintf(errw, "corral: found %s in %s (%s): service %q uses preset %s\n", c.what, dir, strings.Join(c.evidence, ", "), c.name, c.preset)
			case preset == "none":
			default:
				fmt.Fprintf(errw, "corral: no WebUI or ComfyUI checkout in %s (looked for webui.sh or webui.bat beside launch.py and modules/, and main.py beside comfy/): wrote an example service \"app\" to edit\n", dir)
			}
			name := c.name
			if !found {
				name = "app"
			}
			fmt.Fprintf(out, "wrote %s (service %s); check it with: corral check; start it with: corral up\n", g.config, name)
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "replace an existing file")
	c.Flags().StringVar(&preset, "preset", "", "a1111, forge, comfyui, or none (the example service); default: what DIR holds")
	root.AddCommand(c)
}

// writeNew writes text to path: a new file, or with force a replacement
// (written beside it and renamed over it, so that a reader never sees half
// of it).
func writeNew(path, shown, text string, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("init: %s exists already; nothing was written: pass --force to replace it, or -c FILE to write another file", shown)
		}
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		if _, err := f.WriteString(text); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("init: write %s: %w", path, err)
		}
		return f.Close()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".corral.toml-*")
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if _, err := tmp.WriteString(text); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("init: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("init: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("init: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("init: replace %s: %w", path, err)
	}
	return nil
}
