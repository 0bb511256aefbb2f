package daemon

import (
	"testing"

	"github.com/corral-sh/corral/proctree"
)

// CORRAL_CONTAINMENT is corral's setting, read here (proctree reads no
// environment): it decides only where nothing more specific did.
func TestContainmentFromEnv(t *testing.T) {
	t.Setenv(ContainmentEnv, "pgroup")
	if c, err := ContainmentFromEnv(proctree.Auto); err != nil || c != proctree.ForcePgroup {
		t.Fatalf("%s=pgroup with Auto gave %q, %v", ContainmentEnv, c, err)
	}
	if c, err := ContainmentFromEnv(proctree.ForceCgroup); err != nil || c != proctree.ForceCgroup {
		t.Fatalf("%s=pgroup overrode a forced cgroup: %q, %v", ContainmentEnv, c, err)
	}
	t.Setenv(ContainmentEnv, "bogus")
	if _, err := ContainmentFromEnv(proctree.Auto); err == nil {
		t.Fatalf("%s=bogus accepted", ContainmentEnv)
	}
	t.Setenv(ContainmentEnv, "")
	if c, err := ContainmentFromEnv(proctree.Auto); err != nil || c != proctree.Auto {
		t.Fatalf("unset %s gave %q, %v", ContainmentEnv, c, err)
	}
}
