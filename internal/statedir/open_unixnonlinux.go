//go:build unix && !linux

package statedir

import (
	"io/fs"
	"os"
)

func openBeneath(root, rel string, flag int, perm fs.FileMode) (*os.File, error) {
	return openPortable(root, rel, flag, perm)
}
