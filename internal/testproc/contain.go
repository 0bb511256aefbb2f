package testproc

import (
	"fmt"
	"os"

	"github.com/corral-sh/corral/proctree"
)

func init() {
	// contain / uncontain start `tree 1 2` with and without proctree and
	// print the tree's leader pid: a stand-in for a supervisor that is then
	// killed, to show what its death does to the tree.
	Register("contain", func([]string) {
		tr, err := proctree.Start(child("tree", "1", "2"), proctree.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "contain:", err)
			os.Exit(1)
		}
		fmt.Println("leader", tr.PID())
		block()
	})
	Register("uncontain", func([]string) {
		c := child("tree", "1", "2")
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "uncontain:", err)
			os.Exit(1)
		}
		fmt.Println("leader", c.Process.Pid)
		block()
	})
}
