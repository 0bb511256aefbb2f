package testproc

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"time"
)

func init() {
	Register("lateserver", func(args []string) {
		// lateserver ADDR DELAY: a server that needs DELAY after the
		// process started to load, then listens on ADDR and says so, as
		// WebUI and most servers do (nothing answers before).
		d, _ := time.ParseDuration(args[1])
		time.Sleep(time.Until(processStart.Add(d)))
		ln, err := net.Listen("tcp", args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, "lateserver:", err)
			os.Exit(1)
		}
		fmt.Println("listening on http://" + ln.Addr().String())
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"ok":true}`) }))
	})
	Register("forking", func(args []string) {
		// forking PIDFILE: a classic forking daemon (nginx, redis
		// --daemonize): the launcher starts a detached master, which writes
		// its pid to PIDFILE and starts a worker; the launcher exits 0.
		c := child("pidfiled", args...)
		detach(c)
		if err := startReady(c); err != nil {
			fmt.Fprintln(os.Stderr, "forking:", err)
			os.Exit(1)
		}
	})
	Register("pidfiled", func(args []string) {
		if err := startReady(child("worker")); err != nil {
			fmt.Fprintln(os.Stderr, "pidfiled:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(args[0], []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "pidfiled:", err)
			os.Exit(1)
		}
		ready()
		block()
	})
	Register("tree", func(args []string) {
		// tree DEPTH WIDTH: WIDTH children, each a tree of DEPTH-1; works
		// on every OS (no ready pipe), for chains under cmd.exe.
		depth, _ := strconv.Atoi(args[0])
		width, _ := strconv.Atoi(args[1])
		for i := 0; depth > 0 && i < width; i++ {
			if err := startChild("tree", strconv.Itoa(depth-1), args[1]); err != nil {
				fmt.Fprintln(os.Stderr, "tree:", err)
				os.Exit(1)
			}
		}
		block()
	})
	Register("graceful", graceful)
	Register("ticker", ticker)
	Register("outlive", func(args []string) {
		// outlive D: start a child that lives D, and exit at once, as a
		// launcher whose server outlives it.
		if err := startChild("sleepfor", args[0]); err != nil {
			fmt.Fprintln(os.Stderr, "outlive:", err)
			os.Exit(1)
		}
	})
	Register("sleepfor", func(args []string) {
		d, _ := time.ParseDuration(args[0])
		time.Sleep(d)
	})
	Register("exit", func(args []string) {
		code := 0
		if len(args) > 0 {
			code, _ = strconv.Atoi(args[0])
		}
		os.Exit(code)
	})
}

// processStart is as close to the exec as Go code gets.
var processStart = time.Now()

// graceful DEPTH WIDTH (with -log PREFIX): a tree like `tree` in which every
// process, on a stop signal (a console control event on Windows), creates
// PREFIX.ID.stopped and exits 0. Each creates PREFIX.ID.ready once its
// handler is installed and its children started. (One file per event: a
// shared log would depend on atomic appends, which wine does not give.)
func graceful(args []string) {
	fs := flag.NewFlagSet("graceful", flag.ExitOnError)
	logPath := fs.String("log", "", "prefix of the ready/stopped files")
	fs.Parse(args)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, stopSignals...)
	// Named by pid and start: wine hands out a dead process's pid again at
	// once, and a second process's file must not be the first one's.
	id := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	note := func(what string) {
		os.WriteFile(fmt.Sprintf("%s.%s.%s", *logPath, id, what), nil, 0o644)
	}
	depth, _ := strconv.Atoi(fs.Arg(0))
	width, _ := strconv.Atoi(fs.Arg(1))
	for i := 0; depth > 0 && i < width; i++ {
		if err := startChild("graceful", "-log", *logPath, strconv.Itoa(depth-1), fs.Arg(1)); err != nil {
			fmt.Fprintln(os.Stderr, "graceful:", err)
			os.Exit(1)
		}
	}
	note("ready")
	<-stop
	note("stopped")
	os.Exit(0)
}

// ticker -log FILE DEPTH WIDTH: a tree like `tree` in which every process
// appends its pid to FILE every 10 ms, so a test can see which members run.
func ticker(args []string) {
	fs := flag.NewFlagSet("ticker", flag.ExitOnError)
	logPath := fs.String("log", "", "file to append pids to")
	fs.Parse(args)
	depth, _ := strconv.Atoi(fs.Arg(0))
	width, _ := strconv.Atoi(fs.Arg(1))
	for i := 0; depth > 0 && i < width; i++ {
		if err := startChild("ticker", "-log", *logPath, strconv.Itoa(depth-1), fs.Arg(1)); err != nil {
			fmt.Fprintln(os.Stderr, "ticker:", err)
			os.Exit(1)
		}
	}
	line := []byte(strconv.Itoa(os.Getpid()) + "\n")
	for {
		if f, err := os.OpenFile(*logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Write(line)
			f.Close()
		}
		time.Sleep(10 * time.Millisecond)
	}
}
