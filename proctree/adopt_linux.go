package proctree

import (
	"os"
	"strings"

	"github.com/corral-sh/corral/internal/cgroupv2"
)

func adoptBackend(instance string, o AdoptOptions) (backend, error) {
	if o.CgroupDir != "" {
		if g, err := cgroupv2.Open(o.CgroupDir); err == nil {
			info := detectCgroup()
			return &cgroupBackend{g: g, rel: strings.TrimPrefix(g.Dir, info.Mount), fd: -1}, nil
		} else if !os.IsNotExist(err) && !cgroupv2.Gone(err) {
			return nil, err
		}
	}
	return adoptedPgroup(instance), nil
}
