package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Services defined through the API (PUT /v1/services/NAME): a JSON object
// with the keys of a [services.NAME] table. It is validated by the same
// code as the file: the JSON is rendered as that TOML table and parsed by
// Parse, so every key, type, range and preset means what it means in
// corral.toml, and relative paths resolve against the configuration file's
// directory. What spans services (after names a known service, no cycle)
// is checked by With, against the file's services and the other defined
// ones.

// DefinitionError is a service definition that was refused: every problem
// names its key as corral.toml would spell it (services.NAME.KEY).
type DefinitionError struct {
	Service  string // the service being defined; "" for a check across services
	Problems []string
}

func (e *DefinitionError) Error() string {
	if e.Service == "" {
		return "config: " + strings.Join(e.Problems, "; ")
	}
	return fmt.Sprintf("config: definition of service %s refused: %s", e.Service, strings.Join(e.Problems, "; "))
}

// maxDefinition bounds one definition's JSON.
const maxDefinition = 1 << 20

// ParseDefinition validates def, the JSON definition of service name, as
// Parse validates a [services.NAME] table of a file in directory base.
func ParseDefinition(base, name string, def []byte) (*Service, error) {
	refuse := func(key, format string, args ...any) error {
		p := fmt.Sprintf(format, args...)
		if key != "" {
			p = key + ": " + p
		}
		return &DefinitionError{Service: name, Problems: []string{p}}
	}
	if len(def) > maxDefinition {
		return nil, refuse("", "the definition is %d bytes, more than %d", len(def), maxDefinition)
	}
	dec := json.NewDecoder(bytes.NewReader(def))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, refuse("", "the body is not JSON: %v", err)
	}
	if dec.More() {
		return nil, refuse("", "the body holds more than one JSON value")
	}
	table, ok := doc.(map[string]any)
	if !ok {
		return nil, refuse("", `the body must be a JSON object with the keys of a [services.%s] table (e.g. {"command": ["program", "arg"]}), not %s`, name, jsonKind(doc))
	}
	prefix := "services." + tomlKey(name)
	// after names other services: With checks it, against all of them.
	var after []string
	if v, ok := table["after"]; ok {
		list, ok := v.([]any)
		for _, x := range list {
			s, isStr := x.(string)
			ok = ok && isStr
			after = append(after, s)
		}
		if !ok {
			return nil, refuse(prefix+".after", `expected a list of service names (["db"]), found %s`, jsonKind(v))
		}
		table = maps.Clone(table)
		delete(table, "after")
	}
	tv, err := tomlValue(prefix, table)
	if err != nil {
		return nil, &DefinitionError{Service: name, Problems: []string{err.Error()}}
	}
	var src bytes.Buffer
	if err := toml.NewEncoder(&src).Encode(map[string]any{"services": map[string]any{name: tv}}); err != nil {
		return nil, refuse("", "cannot be written as a TOML table: %v", err)
	}
	path := filepath.Join(base, "(definition of "+name+")")
	f, err := Parse(path, src.String())
	if err != nil {
		return nil, &DefinitionError{Service: name, Problems: problems(err, path)}
	}
	s := f.Services[name]
	if s == nil { // Parse names every service it was given
		return nil, refuse(prefix, "not understood")
	}
	s.After = after
	return s, nil
}

// With returns a copy of f with extra, services defined elsewhere (through
// the API), added beside its own, and checks what spans services: no name
// twice, after names a known service, no cycle.
func With(f *File, extra map[string]*Service) (*File, error) {
	out := *f
	out.Services = maps.Clone(f.Services)
	var errs []string
	for _, name := range sortedNames(extra) {
		if _, ok := f.Services[name]; ok {
			errs = append(errs, fmt.Sprintf("services.%s: is defined in %s", tomlKey(name), f.Path))
			continue
		}
		out.Services[name] = extra[name]
	}
	if len(errs) > 0 {
		return nil, &DefinitionError{Problems: errs}
	}
	p := &parser{path: f.Path}
	p.checkAfter(&out, nil)
	if len(p.errs) > 0 {
		return nil, &DefinitionError{Problems: problems(errors.Join(p.errs...), f.Path)}
	}
	return &out, nil
}

func sortedNames(m map[string]*Service) []string {
	f := File{Services: m}
	return f.Names()
}

// problems turns Parse's errors into key: message, without the positions
// (they are of the rendered TOML, which nobody wrote).
func problems(err error, path string) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *Error
		if errors.As(err, &ce) {
			if ce.File != path {
				// Another file's line (an env_file's): its position is real.
				out = append(out, ce.Error())
				return
			}
			if ce.Key == "" {
				out = append(out, ce.Msg)
			} else {
				out = append(out, ce.Key+": "+ce.Msg)
			}
			return
		}
		out = append(out, strings.TrimPrefix(err.Error(), path+": "))
	}
	walk(err)
	return out
}

// tomlValue converts a decoded JSON value to what the TOML encoder writes:
// numbers become integers where they are whole, else floats; null has no
// TOML spelling and is refused.
func tomlValue(key string, v any) (any, error) {
	switch v := v.(type) {
	case nil:
		return nil, fmt.Errorf("%s: null is not a value; leave the key out for its default", key)
	case json.Number:
		if n, err := strconv.ParseInt(v.String(), 10, 64); err == nil {
			return n, nil
		}
		f, err := strconv.ParseFloat(v.String(), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s is not a number corral can hold", key, v)
		}
		return f, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			y, err := tomlValue(key, x)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			y, err := tomlValue(key+"."+tomlKey(k), x)
			if err != nil {
				return nil, err
			}
			out[k] = y
		}
		return out, nil
	}
	return v, nil // string, bool
}

// tomlKey spells a key as a dotted TOML path does: bare, or quoted.
func tomlKey(k string) string {
	if k != "" && strings.Trim(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == "" {
		return k
	}
	return strconv.Quote(k)
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// ErrInFile marks a request to define, change or remove through the API a
// service the configuration file defines: the file is its only authority.
var ErrInFile = errors.New("defined in the configuration file")
