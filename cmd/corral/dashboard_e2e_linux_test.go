package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// [corral] http starts the dashboard with the daemon; corral dashboard
// prints its URL (the token in it is what opens it); corral metrics and
// GET /metrics on the dashboard serve the same figures.
func TestE2EDashboardAndMetrics(t *testing.T) {
	dashPort := freePort(t)
	e := newEnv(t, fmt.Sprintf("[corral]\nhttp = \"127.0.0.1:%d\"\n", dashPort)+webuiTOML(freePort(t), ""))
	e.must("up")
	info, err := e.client().Daemon(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("127.0.0.1:%d", dashPort); info.Dashboard != want {
		t.Fatalf("the daemon's dashboard is at %q, want %q (from [corral] http)", info.Dashboard, want)
	}
	u := strings.TrimSpace(e.must("dashboard"))
	if !strings.HasPrefix(u, fmt.Sprintf("http://127.0.0.1:%d/?token=", dashPort)) {
		t.Fatalf("corral dashboard printed %q", u)
	}
	get := func(url, token string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	token := u[strings.Index(u, "token=")+len("token="):]
	base := fmt.Sprintf("http://127.0.0.1:%d", dashPort)
	if code, _ := get(base+"/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("metrics without the token: %d", code)
	}
	code, body := get(base+"/metrics", token)
	if code != 200 || !strings.Contains(body, `corral_service_state{service="webui",state="ready"} 1`) {
		t.Fatalf("metrics with the token: %d\n%.3000s", code, body)
	}
	m := e.must("metrics")
	for _, want := range []string{
		`corral_service_members{service="webui"}`,
		`corral_service_starts_total{service="webui"} 1`,
		`corral_service_probe_duration_seconds_count{probe="ready",result="ok",service="webui"}`,
		"go_goroutines",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("corral metrics has no %s", want)
		}
	}
	// What a Prometheus server would read: the text parser takes all of
	// it, and the names follow its conventions (counters end in _total,
	// units are base units in the name).
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(m))
	if err != nil {
		t.Fatalf("the metrics do not parse as Prometheus text: %v", err)
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "corral_") {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			if !strings.HasSuffix(name, "_total") {
				t.Errorf("counter %s does not end in _total", name)
			}
		default:
			if strings.HasSuffix(name, "_total") {
				t.Errorf("%s %s ends in _total", f.GetType(), name)
			}
		}
		for _, bad := range []string{"_ms", "_mib", "_kb", "_mb", "_milliseconds"} {
			if strings.Contains(name, bad) {
				t.Errorf("%s is not in base units", name)
			}
		}
	}
	if _, ok := fams["corral_service_rss_bytes"]; !ok {
		t.Errorf("no corral_service_rss_bytes among %d families", len(fams))
	}
	if code, body := get(base+"/api/v1/services", token); code != 200 || !strings.Contains(body, `"name":"webui"`) {
		t.Fatalf("the dashboard's API: %d %s", code, body)
	}
	// A second dashboard is the same one.
	if again := strings.TrimSpace(e.must("dashboard", "--addr", "127.0.0.1:0")); again != u {
		t.Fatalf("corral dashboard again printed %q, first %q", again, u)
	}
}
