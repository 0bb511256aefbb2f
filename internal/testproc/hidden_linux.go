package testproc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

func init() {
	Register("hiddendaemon", func(args []string) {
		// hiddendaemon PIDFILE: daemonize, but the daemon then overwrites
		// its environment memory as setproctitle does (nginx, postgres,
		// redis): /proc/PID/environ shows no marker any more, so only its
		// ancestry says which tree it came from.
		c := child("wipedaemon", args...)
		detach(c)
		if err := startReady(c); err != nil {
			fmt.Fprintln(os.Stderr, "hiddendaemon:", err)
			os.Exit(1)
		}
	})
	Register("wipedaemon", func(args []string) {
		if err := wipeEnviron(); err != nil {
			fmt.Fprintln(os.Stderr, "wipedaemon:", err)
			os.Exit(1)
		}
		if len(args) > 0 {
			os.WriteFile(args[0], []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
		}
		ready()
		block()
	})
}

// wipeEnviron zeroes the initial environment block through /proc/self/mem
// (the runtime has its own copy by now), between the env_start and env_end
// the kernel reports in /proc/self/stat (fields 50 and 51).
func wipeEnviron() error {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
	if len(f) < 49 {
		return fmt.Errorf("short /proc/self/stat")
	}
	start, err1 := strconv.ParseUint(f[50-3], 10, 64)
	end, err2 := strconv.ParseUint(f[51-3], 10, 64)
	if err1 != nil || err2 != nil || end <= start {
		return fmt.Errorf("no env_start/env_end in /proc/self/stat")
	}
	mem, err := os.OpenFile("/proc/self/mem", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer mem.Close()
	_, err = mem.WriteAt(make([]byte, end-start), int64(start))
	return err
}
