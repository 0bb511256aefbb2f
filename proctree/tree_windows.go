package proctree

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/corral-sh/corral/internal/procinfo"
)

// On Windows a tree is a Job Object with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
// and no breakaway allowed. The leader starts suspended, is assigned to the
// job, and only then resumed, so every process it ever creates is in the
// job. corral holds the only handle: if corral dies, the kernel closes it
// and kills the whole job.

type basicAccounting struct {
	TotalUserTime             int64
	TotalKernelTime           int64
	ThisPeriodTotalUserTime   int64
	ThisPeriodTotalKernelTime int64
	TotalPageFaultCount       uint32
	TotalProcesses            uint32
	ActiveProcesses           uint32
	TotalTerminatedProcesses  uint32
}

type jobBackend struct {
	leader int
	log    *slog.Logger

	// mu guards job, closed and sent. Every use of the handle holds it: a
	// closed handle's value can be handed to another object, and a late
	// TerminateJobObject on it would hit that object.
	mu     sync.Mutex
	job    windows.Handle
	closed bool
	sent   string // the console event the last signal generated
	// zero is closed (and replaced) when the kernel says the job emptied;
	// waiters take the current one before they check the count.
	zero chan struct{}

	portKey uintptr // completion key; 0: not associated, emptiness is polled

	// freezeMu guards suspended: the members freeze suspended, by pid,
	// with the handle that pins each one. Taken before mu, never after.
	freezeMu  sync.Mutex
	suspended map[int]windows.Handle
}

// emptied wakes every waiter (called by the port's goroutine).
func (b *jobBackend) emptied() {
	b.mu.Lock()
	close(b.zero)
	b.zero = make(chan struct{})
	b.mu.Unlock()
}

// withJob runs f with the job handle, or reports closed (the tree was
// released, which happens only once it is empty).
func (b *jobBackend) withJob(f func(windows.Handle) error) (closed bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return true, nil
	}
	return false, f(b.job)
}

func newBackend(id string, mode Containment, opts Options) (backend, error) {
	if mode == ForceCgroup || mode == ForcePgroup {
		return nil, fmt.Errorf("proctree: containment %q does not exist on Windows (Job Objects are used)", mode)
	}
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("proctree: create job object: %w", err)
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{}
	// Never BREAKAWAY_OK or SILENT_BREAKAWAY_OK: nothing may leave the job.
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return nil, fmt.Errorf("proctree: configure job object: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &jobBackend{job: job, log: log, zero: make(chan struct{})}
	if !watchJob(b, job) {
		log.Debug("proctree: no job completion port; emptiness is polled")
	}
	return b, nil
}

func (b *jobBackend) mechanism() Mechanism { return JobObject }

func resolve(mode Containment, opts Options) (Mechanism, string, error) {
	if mode == ForceCgroup || mode == ForcePgroup {
		return "", "", fmt.Errorf("proctree: containment %q does not exist on Windows (Job Objects are used)", mode)
	}
	return JobObject, "", nil
}

func (b *jobBackend) prepare(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Suspended until it is in the job. A hidden console of its own, so a
	// stop can reach every member with a console control event and nothing
	// else gets it (console_windows.go), unless the caller chose where
	// the console comes from.
	cmd.SysProcAttr.CreationFlags |= windows.CREATE_SUSPENDED
	const consoleChoice = windows.CREATE_NEW_CONSOLE | windows.DETACHED_PROCESS | windows.CREATE_NO_WINDOW
	if cmd.SysProcAttr.CreationFlags&consoleChoice == 0 {
		cmd.SysProcAttr.CreationFlags |= windows.CREATE_NO_WINDOW
	}
	return nil
}

// admit puts the suspended leader in the job (a job cannot be named at
// CreateProcess: the leader starts suspended, is assigned, then resumed).
func (b *jobBackend) admit(pid int) error {
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, uint32(pid))
	if err != nil {
		return fmt.Errorf("proctree: open leader %d: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	if _, err := b.withJob(func(job windows.Handle) error { return windows.AssignProcessToJobObject(job, h) }); err != nil {
		windows.TerminateProcess(h, 1)
		return fmt.Errorf("proctree: assign leader %d to its job: %w", pid, err)
	}
	return nil
}

// resume starts the threads of a suspended process. os/exec hides the main
// thread's handle, so the threads are found through a snapshot.
func resume(pid int) error {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPTHREAD, 0)
	if err != nil {
		return fmt.Errorf("proctree: thread snapshot: %w", err)
	}
	defer windows.CloseHandle(snap)
	var te windows.ThreadEntry32
	te.Size = uint32(unsafe.Sizeof(te))
	resumed := 0
	for err = windows.Thread32First(snap, &te); err == nil; err = windows.Thread32Next(snap, &te) {
		if te.OwnerProcessID != uint32(pid) {
			continue
		}
		th, err := windows.OpenThread(windows.THREAD_SUSPEND_RESUME, false, te.ThreadID)
		if err != nil {
			continue
		}
		if _, err := windows.ResumeThread(th); err == nil {
			resumed++
		}
		windows.CloseHandle(th)
	}
	if resumed == 0 {
		return fmt.Errorf("proctree: no thread of %d could be resumed", pid)
	}
	return nil
}

// container: a job object has no name a reader could open.
func (b *jobBackend) container() string { return "" }

// shimHost: a job holds every descendant; there is no shim.
func (b *jobBackend) shimHost() shimHost { return nil }

func (b *jobBackend) started(pid int) { b.leader = pid }
func (b *jobBackend) abort()          { b.release() }

func (b *jobBackend) pidList() ([]int, error) {
	const max = 4096
	buf := make([]uintptr, 2+max)
	closed, err := b.withJob(func(job windows.Handle) error {
		return windows.QueryInformationJobObject(job, windows.JobObjectBasicProcessIdList,
			uintptr(unsafe.Pointer(&buf[0])), uint32(len(buf))*uint32(unsafe.Sizeof(buf[0])), nil)
	})
	if closed {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("proctree: list job members: %w", err)
	}
	// JOBOBJECT_BASIC_PROCESS_ID_LIST: two DWORDs (assigned, listed) fill
	// the first pointer-sized word; the ids follow.
	listed := int(*(*uint32)(unsafe.Add(unsafe.Pointer(&buf[0]), 4)))
	ids := buf[1 : 1+listed]
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out, nil
}

func (b *jobBackend) pids() ([]int, error) { return b.pidList() }

func (b *jobBackend) members() ([]member, error) {
	ids, err := b.pidList()
	if err != nil {
		return nil, err
	}
	out := make([]member, 0, len(ids))
	for _, st := range procinfo.StatsOf(ids) {
		st.PGID = b.leader
		out = append(out, member{stat: st})
	}
	return out, nil
}

// signal: Windows has no signals. A kill terminates the job; anything else
// becomes a console control event on the tree's own console.
func (b *jobBackend) signal(sig syscall.Signal) ([]member, error) {
	ms, err := b.members()
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	if sig == syscall.SIGKILL {
		if err := b.terminate(); err != nil {
			return nil, err
		}
		return ms, nil
	}
	b.freezeMu.Lock()
	frozen := len(b.suspended) > 0
	b.freezeMu.Unlock()
	if frozen {
		// Suspended members (their console host too) cannot run a handler;
		// the stop goes on to terminate the job.
		return nil, nil
	}
	// Only listed members, by identity, the leader first: a dead leader's
	// pid may already name another process, on another console.
	ids := make([]procinfo.Identity, 0, len(ms))
	for _, m := range ms {
		if m.stat.PID == b.leader {
			ids = append([]procinfo.Identity{m.stat.Identity()}, ids...)
		} else {
			ids = append(ids, m.stat.Identity())
		}
	}
	sent, err := sendConsoleCtrl(b.log, ctrlEvent(sig), ids)
	if err != nil {
		// Nothing was reached; the stop goes on to terminate the job.
		b.log.Warn("proctree: graceful stop not delivered", "err", err)
		return nil, nil
	}
	b.mu.Lock()
	b.sent = sent
	b.mu.Unlock()
	return ms, nil
}

func (b *jobBackend) kill(ctx context.Context) ([]member, error) {
	ms, err := b.members()
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, nil
	}
	return ms, b.terminate()
}

func (b *jobBackend) terminate() error {
	if _, err := b.withJob(func(job windows.Handle) error { return windows.TerminateJobObject(job, 1) }); err != nil {
		return fmt.Errorf("proctree: terminate job: %w", err)
	}
	return nil
}

var (
	procNtSuspendProcess = windows.NewLazySystemDLL("ntdll.dll").NewProc("NtSuspendProcess")
	procNtResumeProcess  = windows.NewLazySystemDLL("ntdll.dll").NewProc("NtResumeProcess")
)

// freeze suspends every member, listing the job again until a pass finds
// none it had not suspended: a member can create a process between the
// listing and its suspension, but a suspended member creates nothing. The
// handles stay open until thaw, so a resume can only reach the process that
// was suspended, never a later one with its pid.
func (b *jobBackend) freeze(ctx context.Context) error {
	b.freezeMu.Lock()
	defer b.freezeMu.Unlock()
	if b.suspended == nil {
		b.suspended = map[int]windows.Handle{}
	}
	for {
		ids, err := b.pidList()
		if err != nil {
			return err
		}
		fresh := 0
		for _, pid := range ids {
			if _, ok := b.suspended[pid]; ok {
				continue
			}
			h, err := windows.OpenProcess(windows.PROCESS_SUSPEND_RESUME|windows.PROCESS_QUERY_INFORMATION, false, uint32(pid))
			if err != nil {
				continue // already gone
			}
			if !b.holds(h) {
				// Gone since the listing, its pid already another's.
				windows.CloseHandle(h)
				continue
			}
			if r, _, _ := procNtSuspendProcess.Call(uintptr(h)); windows.NTStatus(r) != windows.STATUS_SUCCESS {
				windows.CloseHandle(h)
				return fmt.Errorf("proctree: suspend member %d: %w", pid, windows.NTStatus(r))
			}
			b.suspended[pid] = h
			fresh++
		}
		if fresh == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("proctree: freezing the job: %w", err)
		}
	}
}

var procIsProcessInJob = windows.NewLazySystemDLL("kernel32.dll").NewProc("IsProcessInJob")

// holds says whether the process behind h is in the job (h needs
// PROCESS_QUERY_INFORMATION: wine refuses the limited right here).
func (b *jobBackend) holds(h windows.Handle) bool {
	var in int32
	closed, err := b.withJob(func(job windows.Handle) error {
		if r, _, e := procIsProcessInJob.Call(uintptr(h), uintptr(job), uintptr(unsafe.Pointer(&in))); r == 0 {
			return e
		}
		return nil
	})
	return !closed && err == nil && in != 0
}

func (b *jobBackend) thaw() error {
	b.freezeMu.Lock()
	defer b.freezeMu.Unlock()
	var first error
	for pid, h := range b.suspended {
		if r, _, _ := procNtResumeProcess.Call(uintptr(h)); windows.NTStatus(r) != windows.STATUS_SUCCESS && first == nil {
			first = fmt.Errorf("proctree: resume member %d: %w", pid, windows.NTStatus(r))
		}
		windows.CloseHandle(h)
	}
	clear(b.suspended)
	return first
}

func (b *jobBackend) active() (int, error) {
	var info basicAccounting
	closed, err := b.withJob(func(job windows.Handle) error {
		return windows.QueryInformationJobObject(job, windows.JobObjectBasicAccountingInformation,
			uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)), nil)
	})
	if closed {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("proctree: query job: %w", err)
	}
	return int(info.ActiveProcesses), nil
}

func (b *jobBackend) waitEmpty(ctx context.Context) error {
	for d := time.Millisecond; ; d = min(2*d, 50*time.Millisecond) {
		b.mu.Lock()
		zero := b.zero
		b.mu.Unlock()
		n, err := b.active()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if b.portKey != 0 {
			// Notified; the poll only covers a dropped message.
			d = time.Second
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("proctree: waiting for the job to empty (%d active): %w", n, ctx.Err())
		case <-zero:
		case <-time.After(d):
		}
	}
}

// release closes the job handle; with KILL_ON_JOB_CLOSE that would kill any
// member still there, but release runs only once the job is empty.
func (b *jobBackend) release() error {
	// Lock order: freezeMu before mu (freeze lists the job under freezeMu).
	b.freezeMu.Lock()
	for _, h := range b.suspended {
		windows.CloseHandle(h)
	}
	clear(b.suspended)
	b.freezeMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	unwatchJob(b.portKey)
	return windows.CloseHandle(b.job)
}

// delivered names the event the last signal generated, which is not the one
// asked for where the console lacks CTRL_BREAK (wine).
func (b *jobBackend) delivered() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sent
}

func signalName(sig syscall.Signal) string {
	switch {
	case sig == syscall.SIGKILL:
		return "kill"
	case ctrlEvent(sig) == windows.CTRL_C_EVENT:
		return "CTRL_C"
	}
	return "CTRL_BREAK"
}
