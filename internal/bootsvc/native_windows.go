package bootsvc

import (
	"errors"

	"golang.org/x/sys/windows"
)

// Native returns Task Scheduler for the user scope and the service
// control manager for the system scope (see the comment at the top of
// task.go for why).
func Native(scope Scope) (Manager, error) {
	if scope == System {
		return WinService{}, nil
	}
	st, _ := lookPath("schtasks")
	return TaskScheduler{Schtasks: st}, nil
}

// CheckPrivilege says why this process cannot install for scope: a
// service needs an elevated prompt; the user's own logon task does not.
func CheckPrivilege(scope Scope) error {
	if scope == System && !windows.GetCurrentProcessToken().IsElevated() {
		return errors.New("bootsvc: creating a Windows service needs an elevated prompt (Run as administrator)")
	}
	return nil
}
