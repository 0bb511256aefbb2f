package bootsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// WinService manages the system scope's Windows service through the
// service control manager (SCM). The service runs `corral daemon` as
// LocalSystem in session 0, started at boot; the daemon answers the SCM
// itself (RunDaemon), so a stop, or Windows shutting down, is its verified
// shutdown.
type WinService struct{}

func (WinService) Name() string   { return "Windows service" }
func (WinService) Graceful() bool { return true }

// recoveryDelay is the wait before the SCM restarts a crashed daemon.
const recoveryDelay = 2 * time.Second

func (m WinService) Install(s Spec) (Plan, error) {
	if err := s.check(windowsPaths); err != nil {
		return Plan{}, err
	}
	if s.Scope != System {
		return Plan{}, errors.New("bootsvc: a Windows service is the system scope; the user scope is a logon task")
	}
	if s.RunAs != "" {
		// Another account needs its password stored in the SCM; corral
		// does not handle passwords.
		return Plan{}, errors.New("bootsvc: the service runs as LocalSystem; to run it as another account, set its Log On in services.msc after installing")
	}
	if len(s.Env) > 0 {
		return Plan{}, errors.New("bootsvc: a Windows service gets the system's environment; set variables in the services' env in the configuration")
	}
	name := s.TaskName()
	cmdline := WindowsCommandLine(append([]string{s.Executable}, s.Args()...))
	timeout := s.stopTimeout()
	return Plan{
		Steps: []Step{
			{Says: fmt.Sprintf("create (or update) the service %s, started at boot as LocalSystem: %s", name, cmdline),
				Call: func(context.Context, io.Writer) error { return createService(s) }},
			{Says: fmt.Sprintf("set its recovery: restart %s after the daemon crashes, up to 3 times a day", recoveryDelay),
				Call: func(context.Context, io.Writer) error { return withService(name, setRecovery) }},
			{Says: fmt.Sprintf("set its pre-shutdown timeout to %s: when Windows shuts down it waits that long for the verified shutdown", timeout),
				Call: func(context.Context, io.Writer) error {
					return withService(name, func(h *mgr.Service) error { return setPreshutdown(h, timeout) })
				}},
			{Says: "start it", Call: func(_ context.Context, w io.Writer) error {
				return withService(name, func(h *mgr.Service) error { return startService(h, w) })
			}},
		},
		Done: fmt.Sprintf("service %s is installed and started: the daemon starts at every boot", name),
	}, nil
}

func (m WinService) Uninstall(s Spec) (Plan, error) {
	if err := s.check(windowsPaths); err != nil {
		return Plan{}, err
	}
	name := s.TaskName()
	timeout := s.stopTimeout()
	return Plan{
		Steps: []Step{
			{Says: fmt.Sprintf("stop the service %s (its verified shutdown) and wait for it, up to %s", name, timeout),
				Call: func(ctx context.Context, _ io.Writer) error {
					return withService(name, func(h *mgr.Service) error { return stopService(ctx, h, timeout) })
				}},
			{Says: "delete it", Call: func(context.Context, io.Writer) error { return withService(name, (*mgr.Service).Delete) }},
		},
		Done: "service " + name + " is stopped and deleted",
	}, nil
}

func (m WinService) Status(ctx context.Context, s Spec, _ Runner) Status {
	st := Status{Manager: "Windows service", Name: s.TaskName(), Enabled: "unknown", Active: "unknown"}
	err := queryService(s.TaskName(), func(h *mgr.Service) error {
		st.Installed = true
		if c, err := h.Config(); err == nil {
			st.Enabled = map[uint32]string{mgr.StartAutomatic: "enabled (automatic)", mgr.StartManual: "manual", mgr.StartDisabled: "disabled"}[c.StartType]
		} else {
			st.Enabled = "unknown: " + err.Error()
		}
		q, err := h.Query()
		if err != nil {
			st.Active = "unknown: " + err.Error()
			return nil
		}
		st.Active = stateName(q.State)
		st.PID = int(q.ProcessId)
		return nil
	})
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		st.Enabled, st.Active = "no (not installed)", "inactive"
	} else if err != nil {
		st.Enabled, st.Active = "unknown: "+err.Error(), "unknown: "+err.Error()
	}
	return st
}

func stateName(s svc.State) string {
	switch s {
	case svc.Stopped:
		return "stopped"
	case svc.StartPending:
		return "starting"
	case svc.StopPending:
		return "stopping"
	case svc.Running:
		return "running"
	case svc.ContinuePending, svc.PausePending, svc.Paused:
		return "paused"
	}
	return fmt.Sprintf("state %d", s)
}

func connect() (*mgr.Mgr, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, fmt.Errorf("bootsvc: connect to the service control manager: %w", err)
	}
	return m, nil
}

func withService(name string, fn func(*mgr.Service) error) error {
	m, err := connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	h, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("bootsvc: open service %s: %w", name, err)
	}
	defer h.Close()
	return fn(h)
}

// queryService opens the service with the rights a status needs, which
// every user has (withService's connection needs an administrator).
func queryService(name string, fn func(*mgr.Service) error) error {
	m, err := windows.OpenSCManager(nil, nil, windows.SC_MANAGER_CONNECT)
	if err != nil {
		return fmt.Errorf("bootsvc: connect to the service control manager: %w", err)
	}
	defer windows.CloseServiceHandle(m)
	n, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return fmt.Errorf("bootsvc: %w", err)
	}
	h, err := windows.OpenService(m, n, windows.SERVICE_QUERY_STATUS|windows.SERVICE_QUERY_CONFIG)
	if err != nil {
		return fmt.Errorf("bootsvc: open service %s: %w", name, err)
	}
	defer windows.CloseServiceHandle(h)
	return fn(&mgr.Service{Name: name, Handle: h})
}

func createService(s Spec) error {
	m, err := connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	c := mgr.Config{
		DisplayName:  "corral (" + s.Name + ")",
		Description:  "The corral daemon for " + s.Config + ". Written by corral service install; see " + DocURL,
		StartType:    mgr.StartAutomatic,
		ErrorControl: mgr.ErrorNormal,
	}
	if h, err := m.OpenService(s.TaskName()); err == nil {
		defer h.Close()
		return updateService(h, s, c)
	}
	// CreateService quotes like WindowsCommandLine (syscall.EscapeArg).
	h, err := m.CreateService(s.TaskName(), s.Executable, c, s.Args()...)
	if err != nil {
		return fmt.Errorf("bootsvc: create service %s: %w", s.TaskName(), err)
	}
	return h.Close()
}

// updateService rewrites an existing service's command line, start type
// and names. Not mgr's UpdateConfig: it also rewrites the SID type and the
// delayed start, settings corral leaves alone (and that wine's SCM
// refuses).
func updateService(h *mgr.Service, s Spec, c mgr.Config) error {
	bin, err := windows.UTF16PtrFromString(WindowsCommandLine(append([]string{s.Executable}, s.Args()...)))
	if err != nil {
		return fmt.Errorf("bootsvc: %w", err)
	}
	display, err := windows.UTF16PtrFromString(c.DisplayName)
	if err != nil {
		return fmt.Errorf("bootsvc: %w", err)
	}
	if err := windows.ChangeServiceConfig(h.Handle, windows.SERVICE_WIN32_OWN_PROCESS, c.StartType, c.ErrorControl,
		bin, nil, nil, nil, nil, nil, display); err != nil {
		return fmt.Errorf("bootsvc: update service %s: %w", s.TaskName(), err)
	}
	desc, err := windows.UTF16PtrFromString(c.Description)
	if err != nil {
		return fmt.Errorf("bootsvc: %w", err)
	}
	d := windows.SERVICE_DESCRIPTION{Description: desc}
	if err := windows.ChangeServiceConfig2(h.Handle, windows.SERVICE_CONFIG_DESCRIPTION, (*byte)(unsafe.Pointer(&d))); err != nil {
		return fmt.Errorf("bootsvc: update service %s's description: %w", s.TaskName(), err)
	}
	return nil
}

// setRecovery restarts a daemon that crashed (ended without reporting
// that it stopped). A daemon that stops with an error of its own (a bad
// configuration, survivors of its shutdown) stays stopped, its exit code
// in the SCM: restarting it after a requested stop would undo the stop.
func setRecovery(h *mgr.Service) error {
	a := mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: recoveryDelay}
	if err := h.SetRecoveryActions([]mgr.RecoveryAction{a, a, a}, uint32((24 * time.Hour).Seconds())); err != nil {
		return fmt.Errorf("bootsvc: set recovery actions: %w", err)
	}
	return nil
}

// setPreshutdown sets how long Windows waits at shutdown for the daemon
// after SERVICE_CONTROL_PRESHUTDOWN (3 minutes by default; a plain
// SERVICE_CONTROL_SHUTDOWN gets only seconds).
func setPreshutdown(h *mgr.Service, d time.Duration) error {
	info := struct{ timeout uint32 }{uint32(d.Milliseconds())}
	if err := windows.ChangeServiceConfig2(h.Handle, windows.SERVICE_CONFIG_PRESHUTDOWN_INFO, (*byte)(unsafe.Pointer(&info))); err != nil {
		return fmt.Errorf("bootsvc: set the pre-shutdown timeout: %w", err)
	}
	return nil
}

func startService(h *mgr.Service, w io.Writer) error {
	err := h.Start()
	if errors.Is(err, windows.ERROR_SERVICE_ALREADY_RUNNING) {
		fmt.Fprintln(w, "  (already running: it keeps its old settings until restarted)")
		return nil
	}
	if err != nil {
		return fmt.Errorf("bootsvc: start service: %w", err)
	}
	return nil
}

// stopService asks the daemon to stop and waits until the SCM says it has.
func stopService(ctx context.Context, h *mgr.Service, timeout time.Duration) error {
	if _, err := h.Control(svc.Stop); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
		return fmt.Errorf("bootsvc: stop service: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		q, err := h.Query()
		if err != nil {
			return fmt.Errorf("bootsvc: query service: %w", err)
		}
		if q.State == svc.Stopped {
			if q.ServiceSpecificExitCode != 0 {
				return fmt.Errorf("bootsvc: the daemon stopped with exit code %d: its shutdown was not clean (see corral events, and the Application event log)", q.ServiceSpecificExitCode)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bootsvc: the service did not stop within %s (state %s)", timeout, stateName(q.State))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// RunDaemon runs the daemon. Started by the SCM, it serves the service
// protocol: a stop, or Windows shutting down, cancels run's context,
// which is the daemon's verified shutdown, and run's error becomes the
// service's exit code and an Application event log entry (a service has
// no console for it). Otherwise it runs run directly, first hiding a
// console window that was made for this process alone (the logon task's:
// Task Scheduler opens one for a console program).
func RunDaemon(run func(ctx context.Context) error) error {
	if is, err := svc.IsWindowsService(); err == nil && is {
		return runAsService(run)
	}
	hideOwnConsole()
	return run(context.Background())
}

func runAsService(run func(ctx context.Context) error) error {
	h := &handler{run: run}
	// The name is ignored for a service of its own process.
	if err := svc.Run("corral", h); err != nil {
		return fmt.Errorf("bootsvc: serve the service control manager: %w", err)
	}
	if h.err != nil {
		if l, err := eventlog.Open("corral"); err == nil {
			l.Error(1, "corral daemon: "+h.err.Error())
			l.Close()
		}
	}
	return h.err
}

type handler struct {
	run func(ctx context.Context) error
	err error
}

func (h *handler) Execute(_ []string, reqs <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()
	const accepts = svc.AcceptStop | svc.AcceptShutdown | svc.AcceptPreShutdown
	status <- svc.Status{State: svc.Running, Accepts: accepts}
	var tick <-chan time.Time
	var checkpoint uint32
	for {
		select {
		case err := <-done:
			h.err = err
			if err != nil {
				return true, 1
			}
			return false, 0
		case c := <-reqs:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown, svc.PreShutdown:
				if tick == nil {
					cancel()
					t := time.NewTicker(time.Second)
					defer t.Stop()
					tick = t.C
				}
				status <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: 10_000}
			}
		case <-tick:
			// A growing checkpoint tells the SCM the stop progresses:
			// the shutdown waits for grace periods that can be long.
			checkpoint++
			status <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: 10_000}
		}
	}
}

var (
	kernel32              = windows.NewLazySystemDLL("kernel32.dll")
	user32                = windows.NewLazySystemDLL("user32.dll")
	getConsoleWindow      = kernel32.NewProc("GetConsoleWindow")
	getConsoleProcessList = kernel32.NewProc("GetConsoleProcessList")
	showWindow            = user32.NewProc("ShowWindow")
)

// hideOwnConsole hides this process's console window when no other
// process shares the console: one Windows made for it (Task Scheduler,
// Explorer), not the terminal it was started from. The console stays, so
// logoff still reaches the daemon (CTRL_LOGOFF_EVENT, which Go turns into
// SIGTERM: its verified shutdown); only its window goes.
func hideOwnConsole() {
	if getConsoleWindow.Find() != nil || getConsoleProcessList.Find() != nil || showWindow.Find() != nil {
		return
	}
	var pids [2]uint32
	n, _, _ := getConsoleProcessList.Call(uintptr(unsafe.Pointer(&pids[0])), uintptr(len(pids)))
	if n != 1 {
		return
	}
	if w, _, _ := getConsoleWindow.Call(); w != 0 {
		const swHide = 0
		showWindow.Call(w, swHide)
	}
}
