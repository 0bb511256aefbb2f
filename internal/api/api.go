package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/logs"
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

// DefaultHeartbeat is how often an idle follow stream gets a heartbeat
// line, unless the request asks for another interval (?heartbeat=D).
const DefaultHeartbeat = 15 * time.Second

// Options configure NewHandler.
type Options struct {
	Log *slog.Logger
	// Heartbeat is the default interval of follow streams' heartbeats
	// (DefaultHeartbeat when 0).
	Heartbeat time.Duration
}

// Handler returns the API's routes.
func Handler(d Daemon, log *slog.Logger) http.Handler { return NewHandler(d, Options{Log: log}) }

// NewHandler returns the API's routes: those of Routes, and for any other
// request a JSON error (not_found, or method_not_allowed with its Allow
// header) instead of net/http's text/plain one, so that every non-2xx
// answer has the same body.
func NewHandler(d Daemon, o Options) http.Handler {
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	h := &handler{d: d, log: o.Log, heartbeat: o.Heartbeat}
	mux := http.NewServeMux()
	ours := map[string]bool{}
	for _, rt := range h.routes() {
		pattern := rt.Method + " " + rt.Path
		mux.HandleFunc(pattern, rt.serve)
		ours[pattern] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A path net/http would redirect to its clean form also names the
		// route it would end at: only a clean one is taken as that route.
		fallback, pattern := mux.Handler(r)
		if p := r.URL.EscapedPath(); ours[pattern] && cleanPath(p) == p {
			mux.ServeHTTP(w, r) // ServeHTTP, not fallback: it sets the path values
			return
		}
		noRoute(w, r, fallback)
	})
}

// cleanPath is net/http's clean form of a request path: rooted, no . or
// .. elements or double slashes, a trailing slash kept.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// Route is one route Handler serves: a method and a net/http pattern
// (docs/openapi.json's path template, with the same {name} wildcards).
type Route struct {
	Method, Path string
	serve        http.HandlerFunc
}

// routes is the one list of what the API serves: NewHandler registers it,
// and the OpenAPI test checks docs/openapi.json against it.
func (h *handler) routes() []Route {
	return []Route{
		{"GET", "/v1/daemon", h.daemon},
		{"GET", "/v1/services", h.list},
		{"GET", "/v1/services/{name}", h.inspect},
		{"PUT", "/v1/services/{name}", h.define},
		{"DELETE", "/v1/services/{name}", h.remove},
		{"POST", "/v1/services/{name}/start", h.action},
		{"POST", "/v1/services/{name}/stop", h.action},
		{"POST", "/v1/services/{name}/restart", h.action},
		{"POST", "/v1/services/{name}/ensure", h.action},
		{"GET", "/v1/services/{name}/logs", h.logs},
		{"GET", "/v1/events", h.events},
		{"POST", "/v1/reload", h.reload},
		{"POST", "/v1/shutdown", h.shutdown},
		{"POST", "/v1/reap", h.reap},
		{"POST", "/v1/bundle", h.bundle},
		{"POST", "/v1/dashboard", h.dashboard},
		{"GET", "/metrics", h.metrics},
	}
}

// Routes lists the routes NewHandler serves, in the order of docs/api.md.
func Routes() []Route { return (&handler{}).routes() }

type handler struct {
	d         Daemon
	log       *slog.Logger
	heartbeat time.Duration
	// ends ends follow streams when their server shuts down.
	ends serverEnds
}

// discard keeps what net/http's own answer for an unknown route would say
// (its status and headers) and drops its text/plain body.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int) {
	if d.code == 0 {
		d.code = code
	}
}

// noRoute answers a request no route takes: 405 with the Allow header when
// the path exists for other methods, 404 otherwise (a path net/http would
// redirect to its clean form too: an API client should send that form).
func noRoute(w http.ResponseWriter, r *http.Request, fallback http.Handler) {
	rec := &discard{h: http.Header{}}
	fallback.ServeHTTP(rec, r)
	if rec.code == http.StatusMethodNotAllowed {
		allow := rec.h.Get("Allow")
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Code: codeMethodNotAllowed,
			Error: fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow)})
		return
	}
	msg := fmt.Sprintf("no route %s %s (docs/api.md lists them)", r.Method, r.URL.Path)
	if loc := rec.h.Get("Location"); loc != "" {
		msg = fmt.Sprintf("no route %s %s: the path is not in its clean form (%s)", r.Method, r.URL.Path, loc)
	}
	writeJSON(w, http.StatusNotFound, errorBody{Code: codeNotFound, Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(noNull(v))
}

// Codes the API adds to the service's (service.Code): what the lifecycle
// cannot know about a request.
const (
	codeUnknownService = "unknown_service" // no service of that name in the configuration
	codeBadConfig      = "bad_config"      // the configuration file was rejected (reload); nothing changed
	codeInternal       = "internal"        // a failure of corral itself
	// No route takes the request (net/http's own 404 and 405, made JSON).
	codeNotFound         = "not_found"          // no route of that path
	codeMethodNotAllowed = "method_not_allowed" // the path's routes take other methods (Allow)
	// PUT or DELETE of a service the configuration file defines.
	codeDefinedInFile = "defined_in_file"
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
	codeNotFound:                        http.StatusNotFound,
	codeMethodNotAllowed:                http.StatusMethodNotAllowed,
	codeDefinedInFile:                   http.StatusConflict,
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
	case errors.Is(err, config.ErrInFile):
		code = codeDefinedInFile
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

func (h *handler) daemon(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.d.Info())
}

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
	name, verb := r.PathValue("name"), path.Base(r.Pattern) // the route's last segment
	q := r.URL.Query()
	o := service.StartOptions{Profile: q.Get("profile"), Wait: q.Get("wait") == "1", RestartIfDifferent: q.Get("restart_if_different") == "1"}
	// The body, if any, is this instance's own arguments and environment.
	if err := launchBody(r, verb, &o); err != nil {
		writeErr(w, name, err)
		return
	}
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
		_, err = sup.RestartWith(ctx, name, o)
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

// window is what a stream's subscription found kept when it began
// (journal.Window, logs.Window).
type window struct{ First, Last uint64 }

// subscribeFunc subscribes to a stream: the kept items numbered above
// after (only the last n of those when n >= 0), then the following ones.
type subscribeFunc[T any] func(after uint64, n int) ([]T, window, <-chan T, func())

func (h *handler) logs(w http.ResponseWriter, r *http.Request) {
	sink, err := h.d.Supervisor().Logs(r.PathValue("name"))
	if err != nil {
		writeErr(w, r.PathValue("name"), err)
		return
	}
	stream(h, w, r, sink.Epoch(), func(after uint64, n int) ([]logs.Line, window, <-chan logs.Line, func()) {
		past, win, ch, cancel := sink.SubscribeAfter(after, n)
		return past, window(win), ch, cancel
	})
}

func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	bus := h.d.Supervisor().Bus()
	// Events have no epoch: their numbering goes on across daemon runs
	// (from the journal); one that lost its journal starts over, which
	// the Corral-Last-Seq rule covers.
	stream(h, w, r, "", func(after uint64, n int) ([]journal.Event, window, <-chan journal.Event, func()) {
		past, win, ch, cancel := bus.SubscribeAfter(after, n)
		return past, window(win), ch, cancel
	})
}

// Stream headers: what the subscription found kept, and how often an idle
// follow gets a heartbeat.
const (
	headerFirstSeq  = "Corral-First-Seq"
	headerLastSeq   = "Corral-Last-Seq"
	headerHeartbeat = "Corral-Heartbeat-Ms"
	headerEpoch     = "Corral-Epoch"
)

// heartbeatLine is what an idle follow stream sends every heartbeat
// interval: a JSON object like the items, so every line stays valid JSON,
// without seq, so that readers that skip what they have already seen skip
// it, and marked, so that readers that know it drop it.
type heartbeatLine struct {
	Heartbeat bool      `json:"heartbeat"`
	Time      time.Time `json:"time"`
}

// stream answers ?n=N (0: all kept), ?after=SEQ (only items numbered
// above SEQ; then n defaults to all of them) with ?epoch=E (the numbering
// SEQ is of: another one than epoch, and the answer starts over at the
// oldest item kept), ?follow=1 and ?heartbeat=D from a subscription, as
// newline-delimited JSON.
func stream[T any](h *handler, w http.ResponseWriter, r *http.Request, epoch string, subscribe subscribeFunc[T]) {
	name, q := r.PathValue("name"), r.URL.Query()
	n, err := intParam(r, "n", 100)
	if err != nil {
		writeErr(w, name, err)
		return
	}
	var after uint64
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			writeErr(w, name, fmt.Errorf("%w: after=%q is not a sequence number", errBadInput, s))
			return
		}
		if !q.Has("n") {
			n = 0 // a resume wants everything after SEQ
		}
		if e := q.Get("epoch"); e != "" && epoch != "" && e != epoch {
			// SEQ numbers lines of another sink (an earlier daemon's):
			// skipping up to it would skip this one's first lines.
			after = 0
		}
	}
	if n == 0 {
		n = -1
	}
	every := h.heartbeat
	if s := q.Get("heartbeat"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 10*time.Millisecond || d > 10*time.Minute {
			writeErr(w, name, fmt.Errorf("%w: heartbeat %q is not a duration from 10ms to 10m", errBadInput, s))
			return
		}
		every = d
	}
	follow := q.Get("follow") == "1"
	past, win, next, cancel := subscribe(after, n)
	defer cancel()
	hd := w.Header()
	hd.Set("Content-Type", "application/x-ndjson")
	hd.Set(headerFirstSeq, strconv.FormatUint(win.First, 10))
	hd.Set(headerLastSeq, strconv.FormatUint(win.Last, 10))
	if epoch != "" {
		hd.Set(headerEpoch, epoch)
	}
	if follow {
		hd.Set(headerHeartbeat, strconv.FormatInt(every.Milliseconds(), 10))
	}
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	flush := func() {
		if fl != nil {
			fl.Flush()
		}
	}
	for _, v := range past {
		if enc.Encode(noNull(v)) != nil {
			return
		}
	}
	flush()
	if !follow {
		return
	}
	// A heartbeat after every interval with nothing sent tells the reader
	// the connection is alive; without it a quiet service's follower
	// cannot tell silence from a dead daemon.
	idle := time.NewTimer(every)
	defer idle.Stop()
	ending := h.ends.of(r)
	for {
		var err error
		select {
		case v, ok := <-next:
			if !ok {
				// The subscription fell too far behind (or its source went
				// away): ending the stream lets the client resume with
				// after=SEQ rather than miss items unknowingly.
				return
			}
			err = encodeBurst(enc, v, next)
		case <-idle.C:
			err = enc.Encode(heartbeatLine{Heartbeat: true, Time: time.Now()})
		case <-r.Context().Done():
			return
		case <-ending:
			return // the daemon shuts down: a clean end of the answer, at once
		}
		if err != nil {
			return // the reader went away
		}
		flush()
		idle.Reset(every)
	}
}

func (h *handler) reload(w http.ResponseWriter, r *http.Request) {
	res, err := h.d.Reload(r.Context())
	if err != nil {
		if service.CodeOf(err) == "" && (errors.As(err, new(*fs.PathError)) || errors.As(err, new(*config.DefinitionError))) {
			err = badConfig{err} // the file could not be read, or a defined service cannot stay beside it
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

// A daemon may also serve metrics and a dashboard; the routes answer
// not_found where it does not (a test double, a library user's daemon).
type (
	metricsServer   interface{ Metrics() http.Handler }
	dashboardServer interface {
		// Dashboard starts the dashboard on addr ("": the configured
		// address, else any free port of 127.0.0.1), or returns the one
		// that runs, and answers its URL (with its token).
		Dashboard(addr string) (string, error)
	}
)

func (h *handler) metrics(w http.ResponseWriter, r *http.Request) {
	m, ok := h.d.(metricsServer)
	if !ok || m.Metrics() == nil {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "this daemon serves no metrics", Code: codeNotFound})
		return
	}
	m.Metrics().ServeHTTP(w, r)
}

func (h *handler) dashboard(w http.ResponseWriter, r *http.Request) {
	d, ok := h.d.(dashboardServer)
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "this daemon serves no dashboard", Code: codeNotFound})
		return
	}
	u, err := d.Dashboard(r.URL.Query().Get("addr"))
	if err != nil {
		writeErr(w, "", fmt.Errorf("%w: %v", errBadInput, err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"url": u})
}
