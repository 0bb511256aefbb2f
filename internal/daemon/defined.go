package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/service"
	"github.com/corral-sh/corral/internal/statedir"
	"github.com/corral-sh/corral/internal/supervisor"
)

// Services defined through the API (PUT and DELETE /v1/services/NAME) are
// kept in the state directory, in DefinitionsName, as the JSON they were
// given, and merged with the configuration file's at every daemon start
// and reload. The file is the authority over its own names: a name it
// defines cannot be defined, changed or removed through the API, and a
// name it comes to define replaces the API's definition (which is then
// removed from the store, saying so in a daemon event).

// DefinitionsName is the store of API-defined services in the state directory.
const DefinitionsName = supervisor.DefinitionsName

// DefinitionsVersion is the store's format; a daemon that finds another
// refuses to start rather than overwrite what it does not understand.
const DefinitionsVersion = 1

// maxDefinitions bounds the store read at start.
const maxDefinitions = 16 << 20

type definitionsFile struct {
	Version  int                        `json:"version"`
	Services map[string]json.RawMessage `json:"services"`
}

// readDefinitions reads the store of stateDir (none: no services). A store
// that is not JSON (a torn write cannot make one: it is renamed into place
// whole; a hand edit can) is kept aside, never dropped: its name is
// returned, and the daemon starts without those services.
func readDefinitions(stateDir string, now time.Time) (defs map[string]json.RawMessage, aside string, err error) {
	path := filepath.Join(stateDir, DefinitionsName)
	if err := statedir.Refuse(path); err != nil {
		return nil, "", fmt.Errorf("daemon: %w", err)
	}
	f, err := statedir.OpenFile(stateDir, DefinitionsName, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]json.RawMessage{}, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("daemon: services defined through the API: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxDefinitions+1))
	f.Close()
	if err != nil {
		return nil, "", fmt.Errorf("daemon: services defined through the API: read %s: %w", path, err)
	}
	var df definitionsFile
	if len(b) > maxDefinitions {
		err = fmt.Errorf("more than %d bytes", maxDefinitions)
	} else {
		err = json.Unmarshal(b, &df)
	}
	if err == nil && df.Version == 0 {
		// {} or null: no version at all is not another corral's store but
		// a damaged (or hand-edited) one.
		err = errors.New("it has no version")
	}
	if err == nil && df.Version != DefinitionsVersion {
		return nil, "", fmt.Errorf("daemon: %s has version %d, and this corral reads version %d: it was written by another corral; run that one, or move the file away (its services are then forgotten)",
			path, df.Version, DefinitionsVersion)
	}
	if err != nil {
		aside = filepath.Join(stateDir, "services.damaged-"+now.UTC().Format("20060102T150405Z")+".json")
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, "", fmt.Errorf("daemon: %s is not a store of services (%v) and could not be kept aside: %w", path, err, rerr)
		}
		return map[string]json.RawMessage{}, aside, nil
	}
	if df.Services == nil {
		df.Services = map[string]json.RawMessage{}
	}
	return df.Services, "", nil
}

// writeDefinitions replaces the store with defs: written whole under a
// temporary name, synced, renamed into place (a crash leaves the old store
// or the new one, never a mix), never through a symlink.
func writeDefinitions(stateDir string, defs map[string]json.RawMessage) error {
	var buf bytes.Buffer
	buf.WriteString("{\"version\": " + strconv.Itoa(DefinitionsVersion) + ", \"services\": {")
	for i, name := range slices.Sorted(maps.Keys(defs)) {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(name)
		buf.WriteString("\n  ")
		buf.Write(k)
		buf.WriteString(": ")
		if err := json.Compact(&buf, defs[name]); err != nil {
			return fmt.Errorf("daemon: the definition of %s is not JSON: %w", name, err)
		}
	}
	buf.WriteString("\n}}\n")
	tmp := DefinitionsName + "." + strconv.Itoa(os.Getpid()) + ".tmp"
	tmpPath := filepath.Join(stateDir, tmp)
	if err := os.Remove(tmpPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("daemon: %w", err)
	}
	f, err := statedir.OpenFile(stateDir, tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	_, werr := f.Write(buf.Bytes())
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = renameRetry(tmpPath, filepath.Join(stateDir, DefinitionsName))
	}
	if werr != nil {
		os.Remove(tmpPath)
		return fmt.Errorf("daemon: write %s: %w", filepath.Join(stateDir, DefinitionsName), werr)
	}
	if runtime.GOOS != "windows" {
		// The rename itself is durable once the directory is.
		if dir, err := os.Open(stateDir); err == nil {
			dir.Sync()
			dir.Close()
		}
	}
	return nil
}

// merged is the configuration in force: the file's services and those
// defined through the API.
type merged struct {
	cfg     *config.File
	dropped []string         // defined through the API, now in the file: the file's wins
	skipped map[string]error // stored, but not valid beside the file now: not loaded, kept
}

// mergeDefinitions adds the stored definitions to the file's services.
// Those in force (inForce, validated when they were defined) must stay
// valid beside the file (else the error: a reload is refused); the others
// are parsed and added once what they start after is there, or skipped.
func mergeDefinitions(file *config.File, defs map[string]json.RawMessage, inForce map[string]*config.Service) (merged, error) {
	out := merged{skipped: map[string]error{}}
	extras := map[string]*config.Service{}
	var rest []string
	for _, name := range slices.Sorted(maps.Keys(defs)) {
		switch {
		case file.Services[name] != nil:
			out.dropped = append(out.dropped, name)
		case inForce[name] != nil:
			extras[name] = inForce[name]
		default:
			rest = append(rest, name)
		}
	}
	if len(extras) > 0 {
		if _, err := config.With(file, extras); err != nil {
			return out, err
		}
	}
	cand := map[string]*config.Service{}
	for _, name := range rest {
		s, err := config.ParseDefinition(filepath.Dir(file.Path), name, defs[name])
		if err != nil {
			out.skipped[name] = err
			continue
		}
		cand[name] = s
	}
	for progress := true; progress && len(cand) > 0; {
		progress = false
		for _, name := range slices.Sorted(maps.Keys(cand)) {
			try := maps.Clone(extras)
			try[name] = cand[name]
			if _, err := config.With(file, try); err != nil {
				out.skipped[name] = err
				continue
			}
			extras = try
			delete(cand, name)
			delete(out.skipped, name)
			progress = true
		}
	}
	cfg, err := config.With(file, extras)
	if err != nil { // each was checked with the others: cannot happen
		return out, err
	}
	out.cfg = cfg
	return out, nil
}

// report says in daemon events what a merge left out, and forgets the
// definitions the file took over (the store is rewritten without them).
func (d *daemon) report(m merged, bus *journal.Bus) {
	for _, name := range sortedKeys(m.skipped) {
		bus.Emit(journal.Event{Kind: journal.Daemon, Service: name, Message: fmt.Sprintf(
			"service %s, defined through the API (%s), was not loaded: %v; it stays stored and is loaded at the next start or reload that accepts it: change it with PUT /v1/services/%s or remove it with DELETE",
			name, DefinitionsName, m.skipped[name], name)})
	}
	if len(m.dropped) == 0 {
		return
	}
	defs := maps.Clone(d.defs)
	for _, name := range m.dropped {
		delete(defs, name)
	}
	err := writeDefinitions(d.o.StateDir, defs)
	if err == nil {
		d.defs = defs
	}
	for _, name := range m.dropped {
		msg := fmt.Sprintf("service %s is defined in %s now: that definition is used, and the one made through the API was removed from %s", name, m.cfg.Path, DefinitionsName)
		if err != nil {
			msg = fmt.Sprintf("service %s is defined in %s now: that definition is used; the one made through the API could not be removed from %s (%v) and is ignored", name, m.cfg.Path, DefinitionsName, err)
		}
		bus.Emit(journal.Event{Kind: journal.Daemon, Service: name, Message: msg})
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// inForce returns the API-defined services of the configuration in force.
func (d *daemon) inForce() map[string]*config.Service {
	cur := d.sup.Config()
	out := map[string]*config.Service{}
	for name := range d.defs {
		if s := cur.Services[name]; s != nil && d.file.Services[name] == nil {
			out[name] = s
		}
	}
	return out
}

// badRequest is a refused API request about service name; nothing changed.
func badRequest(name, format string, args ...any) error {
	return &service.Error{Code: service.CodeBadRequest, Service: name, Msg: fmt.Sprintf(format, args...), Err: service.ErrBadRequest}
}

// Define makes def, a JSON object with the keys of a [services.NAME]
// table, the definition of service name: validated as the file's tables
// are and against the services in force, stored, then applied as a reload
// applies a file (a new service starts if autostart; a changed one that
// runs is restarted with it; an unchanged one is left alone). created: the
// name was not in force before. A start that fails afterwards is not an
// error here: the definition took effect, and the status says how the
// start went.
func (d *daemon) Define(ctx context.Context, name string, def []byte) (created bool, err error) {
	d.reloads.Lock()
	defer d.reloads.Unlock()
	if d.file.Services[name] != nil {
		return false, fmt.Errorf("%w: service %s is defined in %s, which the API does not change: edit it there and run corral reload", config.ErrInFile, name, d.file.Path)
	}
	s, err := config.ParseDefinition(filepath.Dir(d.file.Path), name, def)
	if err != nil {
		return false, refusedDefinition(name, err)
	}
	extras := d.inForce()
	_, existed := extras[name]
	extras[name] = s
	cfg, err := config.With(d.file, extras)
	if err != nil {
		return false, refusedDefinition(name, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, def); err != nil {
		return false, badRequest(name, "the definition is not JSON: %v", err)
	}
	defs := maps.Clone(d.defs)
	defs[name] = compact.Bytes()
	if err := writeDefinitions(d.o.StateDir, defs); err != nil {
		return false, fmt.Errorf("the definition of %s could not be stored, so nothing changed: %w", name, err)
	}
	d.defs = defs
	what := map[bool]string{false: "defined", true: "redefined"}[existed]
	_, err = d.sup.Apply(ctx, cfg, fmt.Sprintf("service %s %s through the API", name, what))
	if errors.Is(err, service.ErrShutdown) {
		return false, fmt.Errorf("corral is shutting down: the definition of %s was stored and takes effect at the daemon's next start: %w", name, err)
	}
	if c := service.CodeOf(err); c == service.CodeStopIncomplete || c == service.CodeLeftover {
		// The restart of the changed service could not empty the old
		// tree: not an answer to report as done.
		return !existed, fmt.Errorf("the definition of %s was stored and applied, but its running instance could not be replaced: %w", name, err)
	}
	if err != nil {
		d.o.Log.Warn("applying a definition", "service", name, "err", err)
	}
	return !existed, nil
}

func refusedDefinition(name string, err error) error {
	var de *config.DefinitionError
	if errors.As(err, &de) {
		return &service.Error{Code: service.CodeBadRequest, Service: name, Err: service.ErrBadRequest,
			Msg: "definition refused, nothing changed: " + strings.Join(de.Problems, "; ")}
	}
	return err
}

// Remove stops service name completely and forgets its definition made
// through the API; the answer is the stop's. A service of the file, one
// another service starts after, or a stop that cannot empty the tree,
// changes nothing.
func (d *daemon) Remove(ctx context.Context, name string) (service.Status, error) {
	d.reloads.Lock()
	defer d.reloads.Unlock()
	if d.file.Services[name] != nil {
		return service.Status{}, fmt.Errorf("%w: service %s is defined in %s, which the API does not change: remove it there and run corral reload", config.ErrInFile, name, d.file.Path)
	}
	if _, ok := d.defs[name]; !ok {
		cur := d.sup.Config()
		return service.Status{}, fmt.Errorf("%w %q%s: no service of that name is defined, in %s or through the API (configured: %s)",
			supervisor.ErrUnknown, name, config.DidYouMean(name, cur.Names()), d.file.Path, strings.Join(cur.Names(), ", "))
	}
	defs := maps.Clone(d.defs)
	delete(defs, name)
	commit := func() error {
		if err := writeDefinitions(d.o.StateDir, defs); err != nil {
			return fmt.Errorf("service %s is stopped, but its definition could not be removed from the store, so it stays defined: %w", name, err)
		}
		d.defs = defs
		return nil
	}
	extras := d.inForce()
	if extras[name] == nil {
		// Stored, but never loaded beside this file: nothing runs.
		if err := commit(); err != nil {
			return service.Status{}, err
		}
		return service.Status{Name: name, State: service.Stopped, Since: time.Now(), Reason: "removed (its definition had not been loaded)"}, nil
	}
	cur := d.sup.Config()
	var users []string
	for _, n := range cur.Names() {
		if slices.Contains(cur.Services[n].After, name) {
			users = append(users, n)
		}
	}
	if len(users) > 0 {
		return service.Status{}, badRequest(name, "cannot be removed: %s start after it (their after key): change or remove them first; nothing changed", strings.Join(users, ", "))
	}
	delete(extras, name)
	cfg, err := config.With(d.file, extras)
	if err != nil {
		return service.Status{}, err
	}
	return d.sup.Remove(ctx, name, cfg, commit)
}
