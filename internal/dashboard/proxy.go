package dashboard

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
)

// ProxyAPI returns an API handler for Options.API that sends each
// request to a daemon over dial (a dashboard run outside the daemon, by
// `corral dashboard`, in front of its socket). dial must be the client's
// dial, which checks that the socket is served by the expected user:
// the dashboard passes on what the page asks, and must not ask another
// user's server. Answers are flushed as they come, so that followed
// logs and events stream through.
func ProxyAPI(dial func(ctx context.Context, network, addr string) (net.Conn, error)) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "corral" // the socket is the address; the name is only a placeholder
			pr.Out.Host = "corral"
		},
		Transport:     &http.Transport{DialContext: dial, DisableCompression: true},
		FlushInterval: -1, // flush after every write: a follow is an endless answer
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the page went away; nobody reads an answer
			}
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": "dashboard: the daemon did not answer: " + err.Error(), "code": "internal"})
		},
	}
}
