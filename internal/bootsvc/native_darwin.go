package bootsvc

import (
	"errors"
	"os"
)

// Native returns the launchd manager: agents in the user's GUI domain,
// daemons in the system domain.
func Native(scope Scope) (Manager, error) {
	home, err := os.UserHomeDir()
	if err != nil && scope == User {
		return nil, errors.New("bootsvc: no home directory ($HOME) to put a launch agent in")
	}
	ctl, _ := lookPath("launchctl")
	return Launchd{Home: home, UID: os.Getuid(), Launchctl: ctl}, nil
}

// CheckPrivilege says why this process cannot install for scope.
func CheckPrivilege(scope Scope) error {
	if scope == System && os.Geteuid() != 0 {
		return errors.New("bootsvc: a launch daemon goes into /Library/LaunchDaemons, which needs root (sudo corral service ... --system)")
	}
	return nil
}
