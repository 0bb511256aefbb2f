package bootsvc

import (
	"errors"
	"os"
	"path/filepath"
)

// Native returns the systemd manager of scope, with the unit directories
// systemd reads for units a user or administrator adds.
func Native(scope Scope) (Manager, error) {
	home, err := os.UserHomeDir()
	if err != nil && scope == User {
		return nil, errors.New("bootsvc: no home directory ($HOME) to put a user unit in")
	}
	// A user manager reads $XDG_CONFIG_HOME/systemd/user; like it, an
	// unset or relative value means ~/.config.
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if !filepath.IsAbs(cfg) {
		cfg = filepath.Join(home, ".config")
	}
	ctl, _ := lookPath("systemctl")
	return Systemd{UserDir: filepath.Join(cfg, "systemd", "user"), SystemDir: "/etc/systemd/system", Systemctl: ctl}, nil
}

// CheckPrivilege says why this process cannot install for scope.
func CheckPrivilege(scope Scope) error {
	if scope == System && os.Geteuid() != 0 {
		return errors.New("bootsvc: a system unit goes into /etc/systemd/system, which needs root (sudo corral service ... --system)")
	}
	return nil
}
