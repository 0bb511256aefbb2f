package proctree

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/windows"

	"github.com/corral-sh/corral/internal/procinfo"
)

// Windows has no signals. A console program's graceful stop is a console
// control event (CTRL_BREAK or CTRL_C), and such an event reaches only the
// processes attached to the console it is generated on. corral usually runs
// without a console (an app's background daemon), so a tree sharing corral's
// console would be unreachable, and a tree that shared the user's terminal
// would also get every Ctrl-C typed there. Each tree therefore gets a hidden
// console of its own (CREATE_NO_WINDOW), and a stop runs a short helper
// process that attaches to that console and generates the event for
// everything on it. The helper is this same executable: any program that
// imports proctree answers to ctrlHelperEnv before its main runs.

// ctrlHelperEnv, when set to "EVENT PID:START...", makes this process the
// helper: it attaches to the console of the first listed process that is
// still the one meant (its creation time is START) and has a console, and
// generates EVENT (0 CTRL_C, 1 CTRL_BREAK) for every process on it.
const ctrlHelperEnv = "PROCTREE_CONSOLE_CTRL"

// Helper exit codes.
const (
	ctrlDelivered  = 0 // the event asked for was generated
	ctrlAsCtrlC    = 1 // CTRL_BREAK is not implemented (wine); CTRL_C was generated instead
	ctrlNoConsole  = 2 // no listed process has a console to attach to
	ctrlGenerating = 3 // the console refused the event
	ctrlUsage      = 4
)

func init() {
	if v, ok := os.LookupEnv(ctrlHelperEnv); ok {
		os.Exit(consoleCtrlHelper(v))
	}
}

var (
	kernel32          = windows.NewLazySystemDLL("kernel32.dll")
	procAttachConsole = kernel32.NewProc("AttachConsole")
	procFreeConsole   = kernel32.NewProc("FreeConsole")

	procSetConsoleCtrlHandler = kernel32.NewProc("SetConsoleCtrlHandler")
)

func consoleCtrlHelper(spec string) int {
	f := strings.Fields(spec)
	if len(f) < 2 {
		return ctrlUsage
	}
	event, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil || event > windows.CTRL_BREAK_EVENT {
		return ctrlUsage
	}
	// The event also reaches this helper, now on the same console. CTRL_C
	// it ignores outright (no handler runs: under wine a handler thread
	// racing the helper's exit crashed it). CTRL_BREAK cannot be ignored;
	// Go's handler swallows it only for a program that asked for it,
	// otherwise the default handler would end the helper mid-way.
	procSetConsoleCtrlHandler.Call(0, 1)
	own := make(chan os.Signal, 1)
	signal.Notify(own, os.Interrupt)
	procFreeConsole.Call()
	attached := false
	for _, item := range f[1:] {
		pidText, startText, ok := strings.Cut(item, ":")
		pid, err1 := strconv.ParseUint(pidText, 10, 32)
		start, err2 := strconv.ParseUint(startText, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return ctrlUsage
		}
		if attachIfSame(uint32(pid), start) {
			attached = true
			break
		}
	}
	if !attached {
		return ctrlNoConsole
	}
	code := ctrlDelivered
	if err := windows.GenerateConsoleCtrlEvent(uint32(event), 0); err != nil {
		if event != windows.CTRL_BREAK_EVENT {
			return ctrlGenerating
		}
		// wine's server implements CTRL_C only.
		if err := windows.GenerateConsoleCtrlEvent(windows.CTRL_C_EVENT, 0); err != nil {
			return ctrlGenerating
		}
		code = ctrlAsCtrlC
	}
	if code == ctrlDelivered && event == windows.CTRL_BREAK_EVENT {
		// Our own copy arriving means the console has dispatched the
		// event; leave once its handler thread is done with it.
		select {
		case <-own:
			time.Sleep(10 * time.Millisecond)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return code
}

// attachIfSame attaches to pid's console if pid is still the process created
// at start. The handle held meanwhile keeps the pid from being reused, so
// the check and the attach are about the same process.
func attachIfSame(pid uint32, start uint64) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	var c, e, k, u windows.Filetime
	if windows.GetProcessTimes(h, &c, &e, &k, &u) != nil || uint64(c.HighDateTime)<<32|uint64(c.LowDateTime) != start {
		return false
	}
	r, _, _ := procAttachConsole.Call(uintptr(pid))
	return r != 0
}

// ctrlEvent is the console event a stop signal becomes: SIGINT is CTRL_C
// (what a user's Ctrl-C sends; python raises KeyboardInterrupt), anything
// else CTRL_BREAK, which a process cannot switch off the way it can CTRL_C.
func ctrlEvent(sig syscall.Signal) uint32 {
	if sig == syscall.SIGINT {
		return windows.CTRL_C_EVENT
	}
	return windows.CTRL_BREAK_EVENT
}

// sendConsoleCtrl runs the helper for the console of the given members
// (the first one still alive with a console wins; all members share it
// unless one made a console of its own) and returns the event it generated.
func sendConsoleCtrl(log *slog.Logger, event uint32, ids []procinfo.Identity) (string, error) {
	pids := make([]int, len(ids))
	for i, id := range ids {
		pids[i] = id.PID
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("proctree: console control helper: %w", err)
	}
	spec := strconv.Itoa(int(event))
	for _, id := range ids {
		spec += fmt.Sprintf(" %d:%d", id.PID, id.Start)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), ctrlHelperEnv+"="+spec)
	// No console of its own (it attaches to the tree's), and corral's
	// process group, which wine's CTRL_C is limited to.
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.DETACHED_PROCESS}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("proctree: start console control helper: %w", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-waited
		return "", fmt.Errorf("proctree: console control helper for %v did not finish in 10s", pids)
	}
	code := cmd.ProcessState.ExitCode()
	switch code {
	case ctrlDelivered:
		return eventName(event), nil
	case ctrlAsCtrlC:
		log.Debug("proctree: CTRL_BREAK not implemented by this console; sent CTRL_C", "pids", pids)
		return eventName(windows.CTRL_C_EVENT), nil
	case ctrlNoConsole:
		return "", fmt.Errorf("proctree: no member of %v has a console to send a control event to", pids)
	case ctrlGenerating:
		return "", fmt.Errorf("proctree: the console of %v refused %s", pids, eventName(event))
	}
	return "", fmt.Errorf("proctree: console control helper: %v", werr)
}

func eventName(event uint32) string {
	if event == windows.CTRL_C_EVENT {
		return "CTRL_C"
	}
	return "CTRL_BREAK"
}
