package containment

import (
	"testing"

	"github.com/corral-sh/corral/proctree"
)

// CORRAL_CONTAINMENT is corral's setting, read here (proctree reads no
// environment): it decides only where nothing more specific did.
func TestContainmentFromEnv(t *testing.T) {
	t.Setenv(Env, "pgroup")
	if c, err := FromEnv(proctree.Auto); err != nil || c != proctree.ForcePgroup {
		t.Fatalf("%s=pgroup with Auto gave %q, %v", Env, c, err)
	}
	if c, err := FromEnv(proctree.ForceCgroup); err != nil || c != proctree.ForceCgroup {
		t.Fatalf("%s=pgroup overrode a forced cgroup: %q, %v", Env, c, err)
	}
	t.Setenv(Env, "bogus")
	if _, err := FromEnv(proctree.Auto); err == nil {
		t.Fatalf("%s=bogus accepted", Env)
	}
	t.Setenv(Env, "")
	if c, err := FromEnv(proctree.Auto); err != nil || c != proctree.Auto {
		t.Fatalf("unset %s gave %q, %v", Env, c, err)
	}
}
