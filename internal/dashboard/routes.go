package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
)

// headers every answer gets: the page runs only its own script and
// style, talks only to its origin, is never framed (clickjacking of the
// buttons), never cached, and sends no Referer (a URL with the token).
func setHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// guard runs the checks before anything is served: the listener, the
// Host header, the origin of a state-changing request, the token.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w.Header())
		local, port := s.listener(r)
		if local != "127.0.0.1" {
			// Served on another address than Serve's (a handler mounted
			// elsewhere by mistake): fail closed.
			s.refuse(w, r, http.StatusForbidden, "forbidden", fmt.Sprintf("dashboard: reached on %q, not on 127.0.0.1: refused", local))
			return
		}
		if !strings.EqualFold(r.Host, "127.0.0.1:"+port) && !strings.EqualFold(r.Host, "localhost:"+port) {
			// A page of another site whose name was made to resolve to
			// 127.0.0.1 (DNS rebinding) names its own host here.
			s.refuse(w, r, http.StatusForbidden, "forbidden", fmt.Sprintf("dashboard: host %q refused: open http://127.0.0.1:%s/", r.Host, port))
			return
		}
		if err := s.cop.Check(r); err != nil {
			// A state-changing request sent by a page of another origin
			// (it may have the cookie only in the browser's eyes).
			s.refuse(w, r, http.StatusForbidden, "forbidden", "dashboard: cross-origin request refused: "+err.Error())
			return
		}
		viaQuery, ok := s.authorized(r, port)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="corral dashboard"`)
			s.refuse(w, r, http.StatusUnauthorized, "unauthorized", "dashboard: a valid token is required: open the URL that corral dashboard printed (it ends in ?token=...), or send Authorization: Bearer TOKEN")
			return
		}
		if viaQuery {
			// From now on the cookie stands in for the token; the page
			// removes it from the address bar.
			http.SetCookie(w, &http.Cookie{Name: cookieName(port), Value: s.cookie, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		}
		next.ServeHTTP(w, r)
	})
}

// listener returns the address and port the request came in on: the
// Host header must name this port. Without a connection (a handler
// called directly) it is the port Serve listens on, if any.
func (s *Server) listener(r *http.Request) (host, port string) {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if h, p, err := net.SplitHostPort(a.String()); err == nil {
			return h, p
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.port == "" {
		return "", ""
	}
	return "127.0.0.1", s.port
}

// cookieName has the port in it: cookies are not kept per port, and two
// dashboards (two daemons) on one machine must not overwrite each
// other's.
func cookieName(port string) string { return "corral_dashboard_" + port }

// authorized reports whether r carries the token, and whether it came in
// the query (the first load, which gets the cookie).
func (s *Server) authorized(r *http.Request, port string) (viaQuery, ok bool) {
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		if s.match(a[7:]) {
			return false, true
		}
	}
	if c, err := r.Cookie(cookieName(port)); err == nil {
		if b, err := hex.DecodeString(c.Value); err == nil && len(b) == sha256.Size && subtle.ConstantTimeCompare(b, s.sum[:]) == 1 {
			return false, true
		}
	}
	if t := r.URL.Query().Get("token"); t != "" && s.match(t) {
		return true, true
	}
	return false, false
}

func (s *Server) match(token string) bool {
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], s.sum[:]) == 1
}

// refuse answers a refused request: JSON ({error, code}, as the API's
// errors) under /api/, plain text elsewhere; no data either way.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	s.opts.Log.Debug("dashboard: refused", "method", r.Method, "path", r.URL.Path, "host", r.Host, "remote", r.RemoteAddr, "status", status)
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, status, map[string]string{"error": msg, "code": code})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// forwarded are the API's routes the dashboard serves under /api: the
// reads and what the page's buttons do. Shutdown, reap and bundle are
// left to the command line.
var forwarded = []string{
	"GET /v1/daemon",
	"GET /v1/services",
	"GET /v1/services/{name}",
	"GET /v1/services/{name}/logs",
	"GET /v1/events",
	"POST /v1/reload",
}

// actions are the verbs of POST /v1/services/{name}/{verb} forwarded.
var actions = map[string]bool{"start": true, "stop": true, "restart": true, "ensure": true}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	sub, _ := fs.Sub(static, "static")
	page := func(name, ctype string) http.HandlerFunc {
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			panic("dashboard: embedded " + name + " missing: " + err.Error())
		}
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Write(b)
		}
	}
	mux.HandleFunc("GET /{$}", page("index.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /app.js", page("app.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /app.css", page("app.css", "text/css; charset=utf-8"))

	for _, route := range forwarded {
		method, path, _ := strings.Cut(route, " ")
		mux.HandleFunc(method+" /api"+path, s.forward)
	}
	mux.HandleFunc("POST /api/v1/services/{name}/{verb}", func(w http.ResponseWriter, r *http.Request) {
		if !actions[r.PathValue("verb")] {
			notForwarded(w, r)
			return
		}
		s.forward(w, r)
	})
	mux.HandleFunc("/api/", notForwarded)

	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Metrics == nil {
			http.Error(w, "dashboard: no metrics are served here", http.StatusNotFound)
			return
		}
		s.opts.Metrics.ServeHTTP(w, r)
	})
	return mux
}

func notForwarded(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusForbidden, map[string]string{
		"error": fmt.Sprintf("dashboard: %s %s is not served by the dashboard (only reads, and start, stop, restart, ensure and reload): use the corral command", r.Method, r.URL.Path),
		"code":  "forbidden",
	})
}

// forward hands the request to the API without its /api prefix and
// without the dashboard's credentials, which the API has no use for and
// must not log.
func (s *Server) forward(w http.ResponseWriter, r *http.Request) {
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, "/api")
	r2.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, "/api")
	q := r2.URL.Query()
	if q.Has("token") {
		q.Del("token")
		r2.URL.RawQuery = q.Encode()
	}
	r2.RequestURI = r2.URL.RequestURI()
	r2.Header.Del("Authorization")
	r2.Header.Del("Cookie")
	s.opts.API.ServeHTTP(w, r2)
}
