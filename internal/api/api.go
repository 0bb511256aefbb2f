package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, supervisor.ErrUnknown):
		code = http.StatusNotFound
	case errors.Is(err, service.ErrShutdown):
		code = http.StatusServiceUnavailable
	case errors.Is(err, errBadInput) || errors.Is(err, service.ErrBadRequest) || errors.As(err, new(*config.Error)):
		code = http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusGatewayTimeout
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

var errBadInput = errors.New("bad request")

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.d.Supervisor().List(r.URL.Query().Get("members") == "1"))
}

func (h *handler) inspect(w http.ResponseWriter, r *http.Request) {
	v, err := h.d.Supervisor().Inspect(r.PathValue("name"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *handler) action(w http.ResponseWriter, r *http.Request) {
	name, verb := r.PathValue("name"), r.PathValue("verb")
	q := r.URL.Query()
	profile, wait := q.Get("profile"), q.Get("wait") == "1"
	// The action runs to its end in the service whatever the client does;
	// the handler only waits for it. Not tied to the connection, whose
	// hang-up detection misfires on Windows named pipes under wine.
	ctx := context.WithoutCancel(r.Context())
	if t := q.Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			writeErr(w, fmt.Errorf("%w: timeout %q is not a positive duration", errBadInput, t))
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
		_, err = sup.Start(ctx, name, profile, wait)
	case "stop":
		_, err = sup.Stop(ctx, name)
	case "restart":
		_, err = sup.Restart(ctx, name, profile, wait)
	case "ensure":
		_, err = sup.Ensure(ctx, name)
	default:
		writeErr(w, fmt.Errorf("%w: unknown action %q (start, stop, restart, ensure)", errBadInput, verb))
		return
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	v, err := sup.Inspect(name)
	if err != nil {
		writeErr(w, err)
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
		writeErr(w, err)
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
		writeErr(w, err)
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
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *handler) bundle(w http.ResponseWriter, r *http.Request) {
	svc := r.URL.Query().Get("service")
	if svc != "" {
		if _, err := h.d.Supervisor().Inspect(svc); err != nil {
			writeErr(w, err)
			return
		}
	}
	reason := "manual"
	if svc != "" {
		reason = "manual-" + svc
	}
	path, _, err := h.d.Supervisor().Bundle(reason, true, svc)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"path": path})
}

func (h *handler) reap(w http.ResponseWriter, r *http.Request) {
	reports, err := h.d.Reap(r.Context(), r.URL.Query().Get("dry_run") == "1")
	if err != nil {
		writeErr(w, err)
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
