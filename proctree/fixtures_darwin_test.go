package proctree_test

import (
	"testing"

	"github.com/corral-sh/corral/proctree"
)

// conformanceBackends on macOS: the process-group tier, the only one.
func conformanceBackends() []backendCase {
	return []backendCase{{name: "pgroup", want: proctree.ProcessGroup}}
}

// assertReleased: a process group has no container beyond its members.
func assertReleased(t *testing.T, tr *proctree.Tree, g proctree.Gated) {}
