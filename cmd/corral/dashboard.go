package main

import (
	"fmt"
	"os/exec"
	"runtime"

	"github.com/spf13/cobra"
)

func addDashboardCommands(root *cobra.Command, g *globals) {
	var addr string
	var open bool
	d := &cobra.Command{
		Use:   "dashboard",
		Short: "Start the daemon's live web dashboard on 127.0.0.1 (or find it) and print its URL",
		Long: `dashboard asks the daemon to serve its dashboard (states, member trees,
live logs, events, start/stop/restart) on 127.0.0.1, if it does not already
(the [corral] http key starts it with the daemon), and prints its URL. The
URL carries a random token that every request needs: whoever has it can
start and stop services, so share it as you would the socket. The dashboard
ends with the daemon.`,
		Example: `  corral dashboard                 # prints http://127.0.0.1:PORT/?token=...
  corral dashboard --open          # and opens it in the browser
  corral dashboard --addr 127.0.0.1:8999`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := g.client().Dashboard(cmd.Context(), addr)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"url": u})
			}
			fmt.Fprintln(cmd.OutOrStdout(), u)
			if open {
				if err := openBrowser(u); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "corral: could not open a browser (%v): open the URL above yourself\n", err)
				}
			}
			return nil
		},
	}
	d.Flags().StringVar(&addr, "addr", "", "127.0.0.1:PORT to listen on when none runs (default: [corral] http, else a free port)")
	d.Flags().BoolVar(&open, "open", false, "open the URL in the default browser")
	root.AddCommand(d)

	root.AddCommand(&cobra.Command{
		Use:   "metrics",
		Short: "Print the daemon's Prometheus metrics (what GET /metrics serves)",
		Example: `  corral metrics | grep corral_service_state
  curl --unix-socket .corral/corral.sock http://corral/metrics   # the same, for a scraper on this machine`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := g.client().Metrics(cmd.Context())
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), m)
			return err
		},
	})
}

// openBrowser hands u to the desktop's opener. The URL is an argument,
// never a shell line: it carries the token, and no shell sees it.
func openBrowser(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	case "darwin":
		cmd = exec.Command("open", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}
