package service

import (
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/pidslimit"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/proctree"
)

func newInstanceID() string {
	var b [12]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// spawn starts the instance contained. It runs in the loop: the state it
// leaves must be decided before any other request is looked at, and it is
// bounded (fork, exec and the fsync of the spawn record).
func (l *loop) spawn(fx fxSpawn) event {
	d, cfg := l.s.deps, l.m.cfg
	refuse := func(err error) event {
		return event{kind: EvRefused, gen: fx.gen, code: CodeSpawnFailed, err: err}
	}
	if cfg.Dir != "" {
		// exec reports a missing working directory as a missing program.
		if st, err := os.Stat(cfg.Dir); err != nil || !st.IsDir() {
			return refuse(fmt.Errorf("working directory %s does not exist or is not a directory (dir in the configuration)", cfg.Dir))
		}
	}
	// Read at each start, as systemd reads EnvironmentFile=: a changed
	// file needs no reload. The values go to the process only (never to
	// the journal, the status or a bundle).
	fileVars, err := config.ReadEnv(cfg.EnvFiles)
	if err != nil {
		return refuse(fmt.Errorf("%w (env_file of service %s)", err, cfg.Name))
	}
	id := newInstanceID()
	var since uint64
	if tail := d.Logs.Tail(1); len(tail) > 0 {
		since = tail[0].Seq
	}
	var pg *pidslimit.Group
	if d.KernelLimits && cfg.Limits.Processes > 0 {
		// Where the kernel can count the tree, it enforces the limit itself:
		// a fork past it fails. Otherwise accounting alone guards it.
		if g, err := pidslimit.New(id, cfg.Limits.Processes); err == nil {
			pg = g
		} else {
			d.Log.Debug("no kernel process limit", "err", err)
		}
	}
	// Known before it exists: no process of ours is ever unaccounted for.
	d.Track(cfg.Name, id, true)
	argv, profile := fx.argv, fx.next.profile
	cmd := command(argv, cfg.Shell)
	cmd.Dir = cfg.Dir
	// Later values win: the user's login variables (HOME, USER, LOGNAME,
	// SHELL) over corral's environment (with PYTHONUNBUFFERED=1 unless it
	// sets it: python.go), the env files over those, the
	// service's env over the files, the start's own over the service's,
	// corral's additions for this start over all.
	env := append(append(withPythonUnbuffered(os.Environ()), cfg.RunAs.Env()...), fileVars...)
	cmd.Env = append(append(append(env, cfg.Env...), fx.next.vars...), fx.next.env...)
	// Who it runs as and its umask (Unix), its priority class (Windows):
	// set as it is created, so its first instruction already has them.
	setupProcess(cmd, cfg)
	if d.StateKey != "" {
		// Last, so neither the config nor the caller can hide the tree
		// from the next daemon of this state directory.
		cmd.Env = append(cmd.Env, procinfo.StateVar+"="+d.StateKey)
	}
	if !cfg.StdinNull {
		cmd.Stdin = os.Stdin
	}
	cmd.Stdout = d.Logs.Writer("stdout")
	cmd.Stderr = d.Logs.Writer("stderr")
	bus, name, line := d.Bus, cfg.Name, strings.Join(argv, " ")
	tr, err := proctree.Start(cmd, proctree.Options{
		Containment: d.Containment, CgroupParent: d.CgroupParent,
		Service: cfg.Name, Instance: id, Logger: d.Log,
		// On disk before the program's first instruction: a crash of
		// corral at any later point leaves a record to reap from.
		Gate: func(g proctree.Gated) error {
			if pg != nil {
				if err := pg.Add(g.PID); err != nil {
					return err
				}
			}
			// Held at the gate, the first process has not run yet: its nice
			// value is set from here, by a process that may still raise a
			// priority (root), before it is released.
			if err := setNice(g.PID, cfg.Nice); err != nil {
				return err
			}
			err := bus.EmitSync(journal.Event{
				Kind: journal.Spawn, Service: name, Instance: g.Instance, PID: g.PID,
				Start: g.StartTicks, Boot: g.Boot, Cgroup: g.Container, Cmdline: argv,
				Message: fmt.Sprintf("started %s (pid %d, %s)", line, g.PID, g.Mechanism),
				Fields:  spawnFields(profile, fx.next.vars),
			})
			if err != nil {
				return fmt.Errorf("cannot journal the spawn, so it was not started (corral never runs what it has not recorded): %w", err)
			}
			return nil
		},
	})
	if err != nil {
		d.Track(cfg.Name, id, false)
		if pg != nil {
			pg.Remove()
		}
		return refuse(err)
	}
	inst := &instance{cfg: cfg, id: tr.ID(), tree: tr, launch: fx.next.launch, argv: argv, started: d.Clock.Now(), logSince: since, pids: pg}
	return event{kind: EvSpawned, gen: fx.gen, newInst: inst}
}

// spawnFields are the spawn record's fields: the profile, and the names
// (not the values: they may be secrets) of the start's own environment.
// Its arguments are in the record's command line.
func spawnFields(profile string, vars []string) map[string]string {
	f := map[string]string{"profile": profile}
	if len(vars) > 0 {
		f["env_keys"] = strings.Join(envKeys(vars), ",")
	}
	return f
}

func exitInfo(st *proctree.ExitStatus, at time.Time, requested bool) *ExitInfo {
	ei := &ExitInfo{At: at, Requested: requested, Code: -1, Description: "ended"}
	if st == nil {
		return ei
	}
	ei.Code = st.ExitCode()
	ei.Signaled = st.Signaled()
	ei.Description = st.String()
	return ei
}

func describeState(st *proctree.ExitStatus) string {
	if st == nil {
		return "status unknown"
	}
	return st.String()
}
