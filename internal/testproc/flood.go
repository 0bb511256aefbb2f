package testproc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// FloodDone is the last line the flood fixture prints, once all its output
// is written.
const FloodDone = "flood: done"

func init() {
	// flood BYTES LINE RATE: BYTES of output in lines of LINE bytes (the
	// newline included), each line its own write(2), as a program that
	// flushes every line (python -u, a logger on a terminal) does: the
	// costliest shape of output for its reader. RATE is bytes per second
	// (0: as fast as the pipe takes them). Then FloodDone, and exit 0.
	Register("flood", func(args []string) {
		total, _ := strconv.ParseInt(args[0], 10, 64)
		size, _ := strconv.Atoi(args[1])
		rate, _ := strconv.ParseInt(args[2], 10, 64)
		size = max(size, 2)
		line := append(bytes.Repeat([]byte("x"), size-1), '\n')
		copy(line, "flood line ")
		began := time.Now()
		var sent int64
		for sent < total {
			if rate > 0 {
				// Paced: a line is due once the rate allows its bytes.
				if due := began.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second))); time.Until(due) > 0 {
					time.Sleep(time.Until(due))
				}
			}
			if _, err := os.Stdout.Write(line); err != nil {
				fmt.Fprintln(os.Stderr, "flood:", err)
				os.Exit(1)
			}
			sent += int64(len(line))
		}
		fmt.Println(FloodDone)
	})
}
