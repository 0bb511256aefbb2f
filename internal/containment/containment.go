// Package containment owns corral's own choice of a tree's containment
// where neither --containment nor the configuration makes one: the
// CORRAL_CONTAINMENT environment variable. proctree reads no environment
// (a library user's Auto means auto); the daemon, the demo and doctor ask
// here, so the three agree on what a tree started now would get.
package containment

import (
	"fmt"
	"os"

	"github.com/corral-sh/corral/proctree"
)

// Env is the environment variable that picks corral's containment.
const Env = "CORRAL_CONTAINMENT"

// FromEnv returns c, or, when c is Auto, what Env asks for (Auto when it
// is unset).
func FromEnv(c proctree.Containment) (proctree.Containment, error) {
	if c != proctree.Auto {
		return c, nil
	}
	c, err := proctree.ParseContainment(os.Getenv(Env))
	if err != nil {
		return c, fmt.Errorf("%s: %w", Env, err)
	}
	return c, nil
}
