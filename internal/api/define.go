package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/corral-sh/corral/internal/service"
	"github.com/corral-sh/corral/internal/supervisor"
)

// Definer is a Daemon whose services can also be defined, changed and
// removed through the API (PUT and DELETE /v1/services/{name}); the
// daemon's is, see internal/daemon/defined.go for the persistence rule.
type Definer interface {
	// Define validates def (a JSON object with the keys of a
	// [services.NAME] table), stores it and applies it as a reload does;
	// created: the name was not defined before.
	Define(ctx context.Context, name string, def []byte) (created bool, err error)
	// Remove stops the service completely, then forgets its definition.
	Remove(ctx context.Context, name string) (service.Status, error)
}

// Bodies are small: a launcher's options, one service's definition.
const maxBody = 1 << 20

// readBody reads a request's body, refusing one past maxBody.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: the body could not be read: %v", errBadInput, err)
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("%w: the body is larger than %d bytes", errBadInput, maxBody)
	}
	return b, nil
}

// launchBody reads the optional body of start, ensure and restart:
// {"args": [...], "env": {"K": "V"}}, this instance's own arguments and
// environment. A key left out (or null) is not given; given, even empty,
// it counts (docs/api.md, "Launch options"). Anything else in it is
// refused, and nothing is done.
func launchBody(r *http.Request, verb string, o *service.StartOptions) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if verb == "stop" {
		return fmt.Errorf("%w: stop takes no body", errBadInput)
	}
	const takes = `it takes "args", a list of strings, and "env", an object of strings: {"args": ["--port", "7861"], "env": {"NAME": "value"}}`
	dec := json.NewDecoder(bytes.NewReader(b))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return fmt.Errorf("%w: the body is not a JSON object; %s", errBadInput, takes)
	}
	if dec.More() {
		return fmt.Errorf("%w: the body holds more than one JSON value; %s", errBadInput, takes)
	}
	var unknown []string
	for k := range fields {
		if k != "args" && k != "env" {
			unknown = append(unknown, fmt.Sprintf("%q", k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("%w: unknown field %s in the body; %s", errBadInput, strings.Join(unknown, ", "), takes)
	}
	if raw, ok := fields["args"]; ok && string(raw) != "null" {
		// Through pointers: json would read a null item as "", an
		// argument nobody sent.
		var args []*string
		if err := json.Unmarshal(raw, &args); err != nil {
			return fmt.Errorf("%w: args must be a list of strings ([\"--port\", \"7861\"]), not %s", errBadInput, jsonType(raw))
		}
		o.Args = make([]string, len(args)) // given, even empty: exactly these
		for i, a := range args {
			if a == nil {
				return fmt.Errorf("%w: args[%d] is null; args must be a list of strings", errBadInput, i)
			}
			o.Args[i] = *a
		}
	}
	if raw, ok := fields["env"]; ok && string(raw) != "null" {
		var env map[string]*string
		if err := json.Unmarshal(raw, &env); err != nil {
			return fmt.Errorf("%w: env must be an object of strings ({\"NAME\": \"value\"}; write \"1\", not 1), not %s", errBadInput, jsonType(raw))
		}
		o.Env = make(map[string]string, len(env))
		for k, v := range env {
			if v == nil {
				return fmt.Errorf("%w: env[%q] is null; env values are strings (\"\" for an empty one)", errBadInput, k)
			}
			o.Env[k] = *v
		}
	}
	return nil
}

// jsonType says what a JSON value is, for an error message.
func jsonType(raw json.RawMessage) string {
	var v any
	json.Unmarshal(raw, &v)
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			if _, ok := x.(string); !ok {
				return "an object with a value that is not a string"
			}
		}
		return "an object"
	case []any:
		for _, x := range v {
			if _, ok := x.(string); !ok {
				return "a list with an element that is not a string"
			}
		}
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	}
	return "that"
}

var errNoDefiner = errors.New("api: this daemon does not take service definitions")

func (h *handler) define(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	d, ok := h.d.(Definer)
	if !ok {
		writeErr(w, name, errNoDefiner)
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeErr(w, name, err)
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeErr(w, name, fmt.Errorf(`%w: PUT /v1/services/%s needs a body: a JSON object with the keys of a [services.%s] table, e.g. {"command": ["python", "launch.py"]}`, errBadInput, name, name))
		return
	}
	// Like an action, it runs to its end whatever the client does.
	created, err := d.Define(context.WithoutCancel(r.Context()), name, body)
	if err != nil {
		writeErr(w, name, err)
		return
	}
	v, err := h.d.Supervisor().Inspect(name)
	if err != nil {
		writeErr(w, name, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, v)
}

func (h *handler) remove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	d, ok := h.d.(Definer)
	if !ok {
		writeErr(w, name, errNoDefiner)
		return
	}
	st, err := d.Remove(context.WithoutCancel(r.Context()), name)
	if err != nil {
		writeErr(w, name, err)
		return
	}
	// As a stop answers: the service's last status, its tree empty.
	writeJSON(w, http.StatusOK, supervisor.View{Status: st})
}
