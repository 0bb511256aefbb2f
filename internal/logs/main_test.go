package logs_test

import (
	"os"
	"testing"

	"github.com/corral-sh/corral/internal/testproc"
)

func TestMain(m *testing.M) {
	testproc.Main()
	os.Exit(m.Run())
}
