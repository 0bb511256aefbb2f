package testproc

import (
	"fmt"
	"io"
	"os"
)

func init() { Register("slowparent", slowparent) }

// slowparent starts a sleep child with the environment entries given as
// arguments (markers: the parent itself carries none), prints its pid, and reaps it only once its stdin is
// closed: an init that reaps slowly, in a process of its own (a test
// binary's own children would be reaped by the reaper linked into it).
func slowparent(args []string) {
	c := Command("sleep")
	c.Env = append(c.Env, args...)
	if err := c.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "slowparent:", err)
		os.Exit(1)
	}
	fmt.Println(c.Process.Pid)
	io.Copy(io.Discard, os.Stdin)
	c.Wait()
	fmt.Println("reaped")
	block()
}
