package dashboard_test

import (
	"os"
	"testing"

	"github.com/corral-sh/corral/internal/testproc"
)

// The browser test's services are this test binary re-run as fixtures.
func TestMain(m *testing.M) {
	testproc.Main()
	os.Exit(m.Run())
}
