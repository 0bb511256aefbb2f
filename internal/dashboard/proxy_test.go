package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/dashboard"
)

// A dashboard in front of a daemon's socket (here a TCP stand-in): the
// requests arrive without the dashboard's prefix and credentials, and a
// followed stream comes through item by item, not at its end.
func TestProxyAPIStreams(t *testing.T) {
	release := make(chan struct{})
	got := make(chan *http.Request, 4)
	daemon := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintln(w, `{"seq":1,"text":"first"}`)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprintln(w, `{"seq":2,"text":"second"}`)
	}))
	defer daemon.Close()
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", daemon.Listener.Addr().String())
	}
	s := dashboard.New(dashboard.Options{API: dashboard.ProxyAPI(dial), Token: token})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	req := request(t, "GET", ts.URL+"/api/v1/services/web/logs?follow=1&n=200", "Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := <-got
	if r.URL.Path != "/v1/services/web/logs" || r.URL.RawQuery != "n=200&follow=1" && r.URL.RawQuery != "follow=1&n=200" ||
		r.Header.Get("Authorization") != "" || r.Header.Get("Cookie") != "" {
		t.Fatalf("the daemon got %s %q with %v", r.Method, r.URL, r.Header)
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || !strings.Contains(sc.Text(), "first") {
		t.Fatalf("first item: %q %v", sc.Text(), sc.Err())
	}
	close(release) // only now: the first item came before the answer's end
	if !sc.Scan() || !strings.Contains(sc.Text(), "second") {
		t.Fatalf("second item: %q %v", sc.Text(), sc.Err())
	}
}

func TestProxyAPIDaemonGone(t *testing.T) {
	dial := func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no daemon here")
	}
	s := dashboard.New(dashboard.Options{API: dashboard.ProxyAPI(dial), Token: token})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	a := do(t, nil, request(t, "GET", ts.URL+"/api/v1/services", "Authorization", "Bearer "+token))
	var body struct{ Error, Code string }
	if a.status != http.StatusBadGateway || json.Unmarshal([]byte(a.body), &body) != nil || !strings.Contains(body.Error, "no daemon here") {
		t.Fatalf("%d %q", a.status, a.body)
	}
}
