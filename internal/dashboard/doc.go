// Package dashboard owns corral's live web dashboard: an HTTP server on
// 127.0.0.1 only, guarded by a random token (as Jupyter's), that serves
// one embedded page (plain HTML, CSS and JavaScript, no external assets)
// and forwards a fixed set of the control API's routes to the API's own
// handler: the reads, and start, stop, restart, ensure and reload. It
// also serves the Prometheus metrics when given their handler.
//
// The dashboard can start and stop services, so every request must carry
// the token (the URL's token= on the first load, then an HttpOnly,
// SameSite=Strict cookie the server sets, or an Authorization: Bearer
// header); the Host header must name the listener (against DNS
// rebinding) and a state-changing request from a browser must come from
// the dashboard's own origin. The page itself holds no data: it reads
// everything through the API with the token, so without it nothing is
// shown.
//
// The API handler is the daemon's own (api.Handler) inside the daemon,
// or ProxyAPI in front of its socket for a dashboard run by the command
// line. It holds no state of corral's: what it shows is what the API
// answers.
package dashboard
