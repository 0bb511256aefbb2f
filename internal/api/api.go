package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/reclaim"
	"github.com/corral-sh/corral/internal/service"
	"github.com/corral-sh/corral/internal/supervisor"
)

// Daemon is what the routes need from the daemon around the supervisor.
type Daemon interface {
	Supervisor() *supervisor.Supervisor
	Info() any
	// Reload re-reads the configuration file and applies it.
	Reload(ctx context.Context) (supervisor.ReloadResult, error)
	// Shutdown runs the verified shutdown; the daemon exits after the
	// answer has been written.
	Shutdown(ctx context.Context) supervisor.ShutdownResult
	// Reap reclaims leftovers of earlier runs (dryRun: only lists them).
	Reap(ctx context.Context, dryRun bool) ([]reclaim.Report, error)
}

// Handler returns the API's routes.
func Handler(d Daemon, log *slog.Logger) http.Handler {
	h := &handler{d: d, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/daemon", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, d.Info()) })
	mux.HandleFunc("GET /v1/services", h.list)
	mux.HandleFunc("GET /v1/services/{name}", h.inspect)
	mux.HandleFunc("POST /v1/services/{name}/{verb}", h.action)
	mux.HandleFunc("GET /v1/services/{name}/logs", h.logs)
	mux.HandleFunc("GET /v1/events", h.events)
	mux.HandleFunc("POST /v1/reload", h.reload)
	mux.HandleFunc("POST /v1/shutdown", h.shutdown)
	mux.HandleFunc("POST /v1/reap", h.reap)
	mux.HandleFunc("POST /v1/bundle", h.bundle)
	return mux
}

type handler struct {
	d   Daemon
	log *slog.Logger
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Codes the API adds to the service's (service.Code): what the lifecycle
// cannot know about a request.
const (
	codeUnknownService = "unknown_service" // no service of that name in the configuration
	codeBadConfig      = "bad_config"      // the configuration file was rejected (reload); nothing changed
	codeInternal       = "internal"        // a failure of corral itself
)

// httpStatus is the answer's status for each code: 4xx the request is
// wrong or conflicts with the service's state, 502 the supervised program
// failed (not corral), 503 corral is going away, 504 the request's own
// deadline passed.
var httpStatus = map[string]int{
	string(service.CodeBadRequest):      http.StatusBadRequest,
	codeBadConfig:                       http.StatusBadRequest,
	codeUnknownService:                  http.StatusNotFound,
	string(service.CodeProfileMismatch): http.StatusConflict,
	string(service.CodeExternal):        http.StatusConflict,
	string(service.CodeFrozen):          http.StatusConflict,
	string(service.CodeStopIncomplete):  http.StatusConflict,
	string(service.CodeLeftover):        http.StatusConflict,
	string(service.CodeStopped):         http.StatusConflict,
	string(service.CodePortInUse):       http.StatusConflict,
	string(service.CodeNotReady):        http.StatusBadGateway,
	string(service.CodeUnhealthy):       http.StatusBadGateway,
	string(service.CodeExited):          http.StatusBadGateway,
	string(service.CodeStartLimit):      http.StatusBadGateway,
	string(service.CodeSpawnFailed):     http.StatusBadGateway,
	string(service.CodeRunaway):         http.StatusBadGateway,
	string(service.CodeShuttingDown):    http.StatusServiceUnavailable,
	string(service.CodeTimeout):         http.StatusGatewayTimeout,
	codeInternal:                        http.StatusInternalServerError,
}

// errorBody is the body of every non-2xx answer (client.Error reads it).
type errorBody struct {
	Error   string `json:"error"`
	Code    string `json:"code"`
	Service string `json:"service"`
}

// classify returns err's code and the answer's status. A service error's
// own code comes first: a dependency's failure keeps its cause.
func classify(err error) (string, int) {
	code := string(service.CodeOf(err))
	switch {
	case code != "":
	case errors.Is(err, supervisor.ErrUnknown):
		code = codeUnknownService
	case errors.As(err, new(*config.Error)) || errors.Is(err, errBadConfig):
		code = codeBadConfig
	case errors.Is(err, errBadInput):
		code = string(service.CodeBadRequest)
	case errors.Is(err, context.DeadlineExceeded):
		code = string(service.CodeTimeout)
	default:
		code = codeInternal
	}
	status, ok := httpStatus[code]
	if !ok { // a code missing from the table above (a bug): still answered with it
		status = http.StatusInternalServerError
	}
	return code, status
}

// writeErr answers err. name is the service the request is about, if
// any; a service error names the service it is about itself (the
// dependency that failed, say).
func writeErr(w http.ResponseWriter, name string, err error) {
	code, status := classify(err)
	if se := (*service.Error)(nil); errors.As(err, &se) && se.Service != "" {
		name = se.Service
	}
	writeJSON(w, status, errorBody{Error: err.Error(), Code: code, Service: name})
}

var (
	errBadInput  = errors.New("bad request")
	errBadConfig = errors.New("bad configuration")
)

// badConfig marks a configuration error that is not a *config.Error (an
// unreadable file) without changing its message.
type badConfig struct{ error }

func (badConfig) Is(target error) bool { return target == errBadConfig }
func (e badConfig) Unwrap() error      { return e.error }

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.d.Supervisor().List(r.URL.Query().Get("members") == "1"))
}

func (h *handler) inspect(w http.ResponseWriter, r *http.Request) {
	v, err := h.d.Supervisor().Inspect(r.PathValue("name"))
	if err != nil {
		writeErr(w, r.PathValue("name"), err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *handler) action(w http.ResponseWriter, r *http.Request) {
	name, verb := r.PathValue("name"), r.PathValue("verb")
	q := r.URL.Query()
	o := service.StartOptions{Profile: q.Get("profile"), Wait: q.Get("wait") == "1", RestartIfDifferent: q.Get("restart_if_different") == "1"}
	// The action runs to its end in the service whatever the client does;
	// the handler only waits for it. Not tied to the connection, whose
	// hang-up detection misfires on Windows named pipes under wine.
	ctx := context.WithoutCancel(r.Context())
	if t := q.Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			writeErr(w, name, fmt.Errorf("%w: timeout %q is not a positive duration", errBadInput, t))
			return
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	sup := h.d.Supervisor()
	var err error
	switch verb {
	case "start":
		_, err = sup.StartWith(ctx, name, o)
	case "stop":
		_, err = sup.Stop(ctx, name)
	case "restart":
		_, err = sup.Restart(ctx, name, o.Profile, o.Wait)
	case "ensure": // always waits for readiness
		_, err = sup.EnsureWith(ctx, name, o)
	default:
		writeErr(w, name, fmt.Errorf("%w: unknown action %q (start, stop, restart, ensure)", errBadInput, verb))
		return
	}
	if err != nil {
		writeErr(w, name, err)
		return
	}
	v, err := sup.Inspect(name)
	if err != nil {
		writeErr(w, name, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func intParam(r *http.Request, key string, def int) (int, error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q is not a number", errBadInput, key, s)
	}
	return n, nil
}

// ndjson streams values, flushing after each, until ctx ends.
func ndjson[T any](w http.ResponseWriter, r *http.Request, past []T, next <-chan T, follow bool) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	for _, v := range past {
		enc.Encode(v)
	}
	if fl != nil {
		fl.Flush()
	}
	if !follow {
		return
	}
	for {
		select {
		case v := <-next:
			enc.Encode(v)
			if fl != nil {
				fl.Flush()
			}
		case <-r.Context().Done():
			return
		}
	}
}

func (h *handler) logs(w http.ResponseWriter, r *http.Request) {
	sink, err := h.d.Supervisor().Logs(r.PathValue("name"))
	if err != nil {
		writeErr(w, r.PathValue("name"), err)
		return
	}
	stream(w, r, sink.Subscribe)
}

func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	stream(w, r, h.d.Supervisor().Bus().Subscribe)
}

// stream answers ?n=N (0: all kept) and ?follow=1 from a subscription.
func stream[T any](w http.ResponseWriter, r *http.Request, subscribe func(n int) ([]T, <-chan T, func())) {
	n, err := intParam(r, "n", 100)
	if err != nil {
		writeErr(w, r.PathValue("name"), err)
		return
	}
	if n == 0 {
		n = -1
	}
	past, ch, cancel := subscribe(n)
	defer cancel()
	ndjson(w, r, past, ch, r.URL.Query().Get("follow") == "1")
}

func (h *handler) reload(w http.ResponseWriter, r *http.Request) {
	res, err := h.d.Reload(r.Context())
	if err != nil {
		if service.CodeOf(err) == "" && errors.As(err, new(*fs.PathError)) {
			err = badConfig{err} // the file could not be read
		}
		writeErr(w, "", err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *handler) bundle(w http.ResponseWriter, r *http.Request) {
	svc := r.URL.Query().Get("service")
	if svc != "" {
		if _, err := h.d.Supervisor().Inspect(svc); err != nil {
			writeErr(w, svc, err)
			return
		}
	}
	reason := "manual"
	if svc != "" {
		reason = "manual-" + svc
	}
	path, _, err := h.d.Supervisor().Bundle(reason, true, svc)
	if err != nil {
		writeErr(w, svc, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"path": path})
}

func (h *handler) reap(w http.ResponseWriter, r *http.Request) {
	reports, err := h.d.Reap(r.Context(), r.URL.Query().Get("dry_run") == "1")
	if err != nil {
		writeErr(w, "", err)
		return
	}
	if reports == nil {
		reports = []reclaim.Report{}
	}
	writeJSON(w, http.StatusOK, reports)
}

func (h *handler) shutdown(w http.ResponseWriter, r *http.Request) {
	// Always 200: the body says whether anything survived, and a client must
	// see the survivors' names either way.
	writeJSON(w, http.StatusOK, h.d.Shutdown(context.WithoutCancel(r.Context())))
}
