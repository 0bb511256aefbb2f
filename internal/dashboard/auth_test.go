package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/dashboard"
)

// secret is what the stand-in API and metrics answer: it must never show
// in a refused answer.
const secret = "SERVICE-DATA-7f3a"

// fakeAPI records what reached it and answers secret.
type fakeAPI struct {
	mu  sync.Mutex
	got []*http.Request
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.got = append(f.got, r)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"data": secret, "path": r.URL.Path})
}

func (f *fakeAPI) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.got...)
}

const token = "0123456789abcdef0123456789abcdef-test-token"

func newServer(t *testing.T) (*dashboard.Server, *httptest.Server, *fakeAPI) {
	t.Helper()
	api := &fakeAPI{}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "corral_up 1 # "+secret) })
	s := dashboard.New(dashboard.Options{API: api, Metrics: metrics, Token: token})
	ts := httptest.NewServer(s.Handler()) // listens on 127.0.0.1
	t.Cleanup(ts.Close)
	return s, ts, api
}

type answer struct {
	status int
	body   string
	header http.Header
}

func do(t *testing.T, c *http.Client, req *http.Request) answer {
	t.Helper()
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

func request(t *testing.T, method, u string, hdr ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

func TestTokenIsRequired(t *testing.T) {
	_, ts, api := newServer(t)
	port := ts.URL[strings.LastIndexByte(ts.URL, ':')+1:]
	for _, path := range []string{"/", "/app.js", "/app.css", "/api/v1/services", "/api/v1/services/web/logs?follow=1", "/api/v1/events", "/metrics"} {
		for _, c := range []struct {
			name string
			req  *http.Request
		}{
			{"no token", request(t, "GET", ts.URL+path)},
			{"wrong token in the query", request(t, "GET", ts.URL+path+sep(path)+"token=nope")},
			{"the token with a byte more", request(t, "GET", ts.URL+path+sep(path)+"token="+token+"x")},
			{"wrong bearer", request(t, "GET", ts.URL+path, "Authorization", "Bearer nope")},
			{"wrong cookie", request(t, "GET", ts.URL+path, "Cookie", "corral_dashboard_"+port+"=00")},
			{"the token itself as the cookie", request(t, "GET", ts.URL+path, "Cookie", "corral_dashboard_"+port+"="+token)},
		} {
			a := do(t, nil, c.req)
			if a.status != http.StatusUnauthorized {
				t.Errorf("GET %s, %s: %d, want 401", path, c.name, a.status)
			}
			if strings.Contains(a.body, secret) || strings.Contains(a.body, "<table") || a.header.Get("Set-Cookie") != "" {
				t.Errorf("GET %s, %s: the refusal gives something away: %q %v", path, c.name, a.body, a.header)
			}
			if len(a.body) > 300 || !strings.Contains(a.body, "token") {
				t.Errorf("GET %s, %s: want a short body that says a token is needed, got %q", path, c.name, a.body)
			}
		}
	}
	if got := api.requests(); len(got) > 0 {
		t.Fatalf("%d requests without the token reached the API", len(got))
	}
	// Under /api/ the refusal is JSON, as the API's own errors.
	a := do(t, nil, request(t, "GET", ts.URL+"/api/v1/services"))
	var body struct{ Error, Code string }
	if err := json.Unmarshal([]byte(a.body), &body); err != nil || body.Code != "unauthorized" || !strings.HasPrefix(body.Error, "dashboard: ") {
		t.Fatalf("an /api/ refusal: %q (%v)", a.body, err)
	}
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}

// The URL's token opens the page once; the cookie it gets then works
// alone, on the page and on the API.
func TestTokenInTheQueryGivesACookie(t *testing.T) {
	_, ts, api := newServer(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	a := do(t, c, request(t, "GET", ts.URL+"/?token="+url.QueryEscape(token)))
	if a.status != http.StatusOK || !strings.Contains(a.body, "<title>corral</title>") {
		t.Fatalf("the page with the token: %d %q", a.status, a.body)
	}
	if strings.Contains(a.body, token) {
		t.Fatal("the page holds the token")
	}
	sc := a.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %s", sc, want)
		}
	}
	if strings.Contains(sc, token) {
		t.Errorf("the cookie is the token itself: %q", sc)
	}
	if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if a.header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("Referrer-Policy %q: the URL with the token would be sent on", a.header.Get("Referrer-Policy"))
	}
	for _, path := range []string{"/", "/app.js", "/app.css", "/api/v1/services?members=1", "/metrics"} {
		a := do(t, c, request(t, "GET", ts.URL+path))
		if a.status != http.StatusOK {
			t.Errorf("GET %s with the cookie alone: %d %q", path, a.status, a.body)
		}
		if strings.HasPrefix(path, "/api/") || path == "/metrics" {
			if !strings.Contains(a.body, secret) {
				t.Errorf("GET %s: %q", path, a.body)
			}
		}
	}
	// What the API got: the path without /api, its own query, and none of
	// the dashboard's credentials.
	a = do(t, c, request(t, "GET", ts.URL+"/api/v1/services/web/logs?n=5&token="+url.QueryEscape(token)))
	if a.status != http.StatusOK {
		t.Fatalf("logs: %d %q", a.status, a.body)
	}
	got := api.requests()
	last := got[len(got)-1]
	if last.URL.Path != "/v1/services/web/logs" || last.URL.Query().Get("n") != "5" || last.URL.Query().Has("token") ||
		last.Header.Get("Cookie") != "" || last.Header.Get("Authorization") != "" || strings.Contains(last.RequestURI, "token") {
		t.Fatalf("the API got %s %q (RequestURI %q) with headers %v", last.Method, last.URL, last.RequestURI, last.Header)
	}
	if q := got[0].URL.Query(); got[0].URL.Path != "/v1/services" || q.Get("members") != "1" {
		t.Fatalf("the API got %q", got[0].URL)
	}
}

func TestBearerToken(t *testing.T) {
	_, ts, _ := newServer(t)
	for _, path := range []string{"/api/v1/daemon", "/metrics"} {
		a := do(t, nil, request(t, "GET", ts.URL+path, "Authorization", "Bearer "+token))
		if a.status != http.StatusOK || !strings.Contains(a.body, secret) {
			t.Errorf("GET %s with the bearer token: %d %q", path, a.status, a.body)
		}
		if a.header.Get("Set-Cookie") != "" {
			t.Errorf("GET %s: a script's request got a cookie", path)
		}
	}
}

// A page of another site whose name resolves to 127.0.0.1 (DNS
// rebinding) sends its own name as Host: refused, even with the token.
func TestHostMustBeTheListener(t *testing.T) {
	_, ts, api := newServer(t)
	u, _ := url.Parse(ts.URL)
	port := u.Port()
	for _, host := range []string{"evil.example:" + port, "evil.example", "127.0.0.1", "127.0.0.1:1", "127.0.0.2:" + port, "[::1]:" + port, "localhost.evil.example:" + port} {
		a := do(t, nil, request(t, "GET", ts.URL+"/api/v1/services", "Host", host, "Authorization", "Bearer "+token))
		if a.status != http.StatusForbidden || strings.Contains(a.body, secret) {
			t.Errorf("Host %q: %d %q, want 403", host, a.status, a.body)
		}
	}
	if n := len(api.requests()); n > 0 {
		t.Fatalf("%d requests with a foreign Host reached the API", n)
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LocalHost:" + port} {
		if a := do(t, nil, request(t, "GET", ts.URL+"/api/v1/services", "Host", host, "Authorization", "Bearer "+token)); a.status != http.StatusOK {
			t.Errorf("Host %q: %d %q", host, a.status, a.body)
		}
	}
}

func TestForeignOriginCannotAct(t *testing.T) {
	_, ts, api := newServer(t)
	post := ts.URL + "/api/v1/services/web/restart"
	for _, c := range []struct {
		name string
		hdr  []string
	}{
		{"foreign origin", []string{"Origin", "http://evil.example"}},
		{"origin of another port", []string{"Origin", "http://127.0.0.1:1"}},
		{"null origin", []string{"Origin", "null"}},
		{"cross-site fetch", []string{"Sec-Fetch-Site", "cross-site"}},
		// A page on another port of 127.0.0.1 is the same site: the
		// browser sends it the SameSite=Strict cookie; only its origin
		// tells it apart.
		{"same-site page on another port", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://127.0.0.1:3000"}},
		{"same-site fetch", []string{"Sec-Fetch-Site", "same-site"}},
	} {
		a := do(t, nil, request(t, "POST", post, append(c.hdr, "Authorization", "Bearer "+token)...))
		if a.status != http.StatusForbidden || strings.Contains(a.body, secret) {
			t.Errorf("POST, %s: %d %q, want 403", c.name, a.status, a.body)
		}
	}
	if n := len(api.requests()); n > 0 {
		t.Fatalf("%d cross-origin posts reached the API", n)
	}
	// The page's own fetch, and a script without Origin, act.
	for _, hdr := range [][]string{{"Origin", ts.URL, "Sec-Fetch-Site", "same-origin"}, nil} {
		if a := do(t, nil, request(t, "POST", post, append(hdr, "Authorization", "Bearer "+token)...)); a.status != http.StatusOK {
			t.Errorf("POST with %v: %d %q", hdr, a.status, a.body)
		}
	}
	if got := api.requests(); len(got) != 2 || got[0].Method != "POST" || got[0].URL.Path != "/v1/services/web/restart" {
		t.Fatalf("the API got %d requests", len(got))
	}
}

// Only the reads and start, stop, restart, ensure and reload reach the
// API: shutdown, reap and bundle stay with the command line.
func TestOnlyTheseRoutesAreForwarded(t *testing.T) {
	_, ts, api := newServer(t)
	for _, c := range []struct {
		method, path string
		ok           bool
	}{
		{"GET", "/api/v1/daemon", true},
		{"GET", "/api/v1/services", true},
		{"GET", "/api/v1/services/web", true},
		{"GET", "/api/v1/services/web/logs", true},
		{"GET", "/api/v1/events", true},
		{"POST", "/api/v1/services/web/start", true},
		{"POST", "/api/v1/services/web/stop", true},
		{"POST", "/api/v1/services/web/restart", true},
		{"POST", "/api/v1/services/web/ensure", true},
		{"POST", "/api/v1/reload", true},
		{"POST", "/api/v1/shutdown", false},
		{"POST", "/api/v1/reap", false},
		{"POST", "/api/v1/bundle", false},
		{"POST", "/api/v1/services/web/frobnicate", false},
		{"GET", "/api/v1/services/web/start", false},
		{"DELETE", "/api/v1/services/web", false},
		{"PUT", "/api/v1/services/web/start", false},
		{"POST", "/api/v1/services", false},
		{"GET", "/api/v2/services", false},
		{"GET", "/api/", false},
		{"GET", "/v1/services", false},
	} {
		before := len(api.requests())
		a := do(t, nil, request(t, c.method, ts.URL+c.path, "Authorization", "Bearer "+token))
		reached := len(api.requests()) > before
		if reached != c.ok || (c.ok && a.status != http.StatusOK) || (!c.ok && (a.status < 400 || strings.Contains(a.body, secret))) {
			t.Errorf("%s %s: %d %q, reached the API: %v, want %v", c.method, c.path, a.status, a.body, reached, c.ok)
		}
	}
}

// Called without a connection (so with no listener to check the Host
// against) before Serve, the handler refuses: it fails closed.
func TestHandlerWithoutListenerRefuses(t *testing.T) {
	s := dashboard.New(dashboard.Options{API: &fakeAPI{}, Token: token})
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, request(t, "GET", "http://127.0.0.1:80/api/v1/services", "Authorization", "Bearer "+token))
	if w.Code != http.StatusForbidden || strings.Contains(w.Body.String(), secret) {
		t.Fatalf("%d %q", w.Code, w.Body)
	}
}

func TestServeListensOnLoopbackOnly(t *testing.T) {
	ctx := t.Context()
	for _, addr := range []string{"0.0.0.0:0", ":0", "localhost:0", "[::1]:0", "[::]:0", "192.0.2.1:8080", "127.0.0.2:0", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000"} {
		s := dashboard.New(dashboard.Options{API: &fakeAPI{}})
		u, err := s.Serve(ctx, addr)
		if err == nil || u != "" || !strings.HasPrefix(err.Error(), "dashboard: ") || s.URL() != "" {
			t.Errorf("Serve(%q) = %q, %v; want an error", addr, u, err)
		}
	}
	s := dashboard.New(dashboard.Options{API: &fakeAPI{}})
	_, err := s.Serve(ctx, "0.0.0.0:0")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1 only") {
		t.Fatalf("the refusal must say why: %v", err)
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	streaming := make(chan struct{})
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/events" {
			fmt.Fprintln(w, secret)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintln(w, `{"seq":1}`)
		w.(http.Flusher).Flush()
		close(streaming)
		<-r.Context().Done() // a follower: ends with its request
	})
	s := dashboard.New(dashboard.Options{API: api})
	u, err := s.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^http://127\.0\.0\.1:[0-9]+/\?token=[0-9a-f]{64}$`).MatchString(u) || s.URL() != u {
		t.Fatalf("URL %q (URL() %q): want http://127.0.0.1:PORT/?token= and 32 random bytes in hex", u, s.URL())
	}
	if other := dashboard.New(dashboard.Options{API: api}); other.Handler() == nil {
		t.Fatal("no handler")
	}
	if _, err := s.Serve(ctx, "127.0.0.1:0"); err == nil || strings.Contains(err.Error(), "token") {
		t.Fatalf("a second Serve: %v (and never the token in a message)", err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	if a := do(t, c, request(t, "GET", u)); a.status != http.StatusOK {
		t.Fatalf("GET %s: %d %q", u, a.status, a.body)
	}
	base := strings.TrimSuffix(u[:strings.Index(u, "?")], "/")
	if a := do(t, c, request(t, "GET", base+"/api/v1/services")); a.status != http.StatusOK || !strings.Contains(a.body, secret) {
		t.Fatalf("with the cookie: %d %q", a.status, a.body)
	}

	// The end of ctx ends a follower and closes the listener.
	resp, err := (&http.Client{Jar: jar}).Get(base + "/api/v1/events?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-streaming
	cancel()
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(resp.Body); done <- err }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a follower outlived the dashboard's context")
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the dashboard did not stop after its context ended")
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/"); err == nil {
		t.Fatal("the dashboard still answers after its context ended")
	}
}
