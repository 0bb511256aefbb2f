package testproc

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

func init() {
	Register("uiserver", uiserver)
	// withparent lives as long as its parent: it reads its stdin, a pipe
	// the parent holds, until EOF (on every OS, unlike a parent-death
	// signal).
	Register("withparent", func([]string) {
		ready()
		io.Copy(io.Discard, os.Stdin)
	})
}

// keep holds the write ends of the withparent children's stdin.
var keep []io.WriteCloser

// uiserver models the restart buttons of the UIs corral runs:
//
//	-mode comfy   POST /restart starts a copy of itself and exits 0, as
//	              ComfyUI-Manager's os.execv does on Windows
//	-mode a1111   POST /restart touches tmp/restart (in its working
//	              directory) and exits 0, as A1111's "Apply and restart
//	              UI"; at start it removes tmp/restart, as A1111 does
//	-mode exec    POST /restart re-executes itself in place (same pid), as
//	              os.execv does on Linux
//
// It answers GET /system_stats (ComfyUI's), /sdapi/v1/options (A1111's) and
// / with its pid and environment flags, says "Running on local URL" when it
// listens, and starts -workers children (a UI's helper processes) that
// live and die with it. -successor-broken: a copy started by a restart
// never listens.
func uiserver(args []string) {
	fs := flag.NewFlagSet("uiserver", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	mode := fs.String("mode", "comfy", "comfy, a1111 or exec")
	workers := fs.Int("workers", 1, "helper processes")
	broken := fs.Bool("successor-broken", false, "a restarted copy never listens")
	generation := fs.Int("generation", 0, "how many restarts came before (set by the restart itself)")
	fs.Parse(args)

	if *mode == "a1111" {
		os.Remove(filepath.Join("tmp", "restart"))
	}
	if *broken && *generation > 0 {
		block()
	}
	for i := 0; i < *workers; i++ {
		c := child("withparent")
		w, err := c.StdinPipe()
		if err == nil {
			err = c.Start() // no ready pipe: Windows passes no extra files
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "uiserver:", err)
			os.Exit(1)
		}
		keep = append(keep, w)
	}
	var ln net.Listener
	var err error
	// The predecessor closes its listener just before it exits: try for a
	// while, as a restarting server does.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ln, err = net.Listen("tcp", *addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "uiserver:", err)
		os.Exit(1)
	}
	next := []string{"-addr", *addr, "-mode", *mode, "-workers", fmt.Sprint(*workers), "-generation", fmt.Sprint(*generation + 1)}
	if *broken {
		next = append(next, "-successor-broken")
	}
	answer := func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"pid": os.Getpid(), "generation": *generation,
			"restarting": os.Getenv("SD_WEBUI_RESTARTING"), "restartable": os.Getenv("SD_WEBUI_RESTART"),
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", answer)
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go restartSelf(ln, *mode, next)
	})
	fmt.Println("Running on local URL:  http://" + ln.Addr().String())
	http.Serve(ln, mux)
	block() // the listener closed for a restart: restartSelf ends the process
}

func restartSelf(ln net.Listener, mode string, next []string) {
	time.Sleep(20 * time.Millisecond) // let the answer go out
	ln.Close()
	switch mode {
	case "a1111":
		os.MkdirAll("tmp", 0o755)
		os.WriteFile(filepath.Join("tmp", "restart"), nil, 0o644)
	case "exec":
		execSelf(append([]string{"uiserver"}, next...))
	default:
		c := child("uiserver", next...)
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "uiserver: successor:", err)
			os.Exit(1)
		}
	}
	os.Exit(0)
}
