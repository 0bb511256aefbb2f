package bootsvc

import (
	"context"
	"encoding/binary"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Why a logon task for the user scope on Windows, and a service only for
// the system scope: a desktop GPU app (a Stable Diffusion WebUI, ComfyUI,
// a model server) needs what the user's logon session has: the GPU driver
// as the user sees it, the user's files, drive mappings and profile
// (%APPDATA%, the Python and CUDA installs under it), and a session that
// its windows and tray icons can show in. A Windows service runs in
// session 0 as LocalSystem, with none of that and no desktop; it is what
// a machine-wide daemon that must run before anyone logs on wants. So
// User is a Task Scheduler task started at the user's logon, running
// with the user's interactive token and least privilege (no elevation,
// no stored password), and System is a Windows service.

const taskNS = "http://schemas.microsoft.com/windows/2004/02/mit/task"

// Task is the Task Scheduler task definition (schema 1.2, Windows 7 and
// later), the subset corral writes. Exported so that tests can parse a
// definition back into it.
type Task struct {
	XMLName          xml.Name         `xml:"Task"`
	Version          string           `xml:"version,attr"`
	RegistrationInfo TaskRegistration `xml:"RegistrationInfo"`
	Triggers         TaskTriggers     `xml:"Triggers"`
	Principals       TaskPrincipals   `xml:"Principals"`
	Settings         TaskSettings     `xml:"Settings"`
	Actions          TaskActions      `xml:"Actions"`
}

type TaskRegistration struct {
	Author      string `xml:"Author,omitempty"`
	Description string `xml:"Description"`
	URI         string `xml:"URI"`
}

type TaskTriggers struct {
	Logon *TaskLogonTrigger `xml:"LogonTrigger"`
}

type TaskLogonTrigger struct {
	Enabled bool   `xml:"Enabled"`
	UserID  string `xml:"UserId"`
}

type TaskPrincipals struct {
	Principal TaskPrincipal `xml:"Principal"`
}

type TaskPrincipal struct {
	ID        string `xml:"id,attr"`
	UserID    string `xml:"UserId"`
	LogonType string `xml:"LogonType"`
	RunLevel  string `xml:"RunLevel"`
}

type TaskSettings struct {
	MultipleInstancesPolicy    string           `xml:"MultipleInstancesPolicy"`
	DisallowStartIfOnBatteries bool             `xml:"DisallowStartIfOnBatteries"`
	StopIfGoingOnBatteries     bool             `xml:"StopIfGoingOnBatteries"`
	AllowHardTerminate         bool             `xml:"AllowHardTerminate"`
	StartWhenAvailable         bool             `xml:"StartWhenAvailable"`
	RunOnlyIfNetworkAvailable  bool             `xml:"RunOnlyIfNetworkAvailable"`
	IdleSettings               TaskIdleSettings `xml:"IdleSettings"`
	AllowStartOnDemand         bool             `xml:"AllowStartOnDemand"`
	Enabled                    bool             `xml:"Enabled"`
	Hidden                     bool             `xml:"Hidden"`
	RunOnlyIfIdle              bool             `xml:"RunOnlyIfIdle"`
	WakeToRun                  bool             `xml:"WakeToRun"`
	ExecutionTimeLimit         string           `xml:"ExecutionTimeLimit"`
	Priority                   int              `xml:"Priority"`
	RestartOnFailure           *TaskRestart     `xml:"RestartOnFailure"`
}

type TaskIdleSettings struct {
	StopOnIdleEnd bool `xml:"StopOnIdleEnd"`
	RestartOnIdle bool `xml:"RestartOnIdle"`
}

type TaskRestart struct {
	Interval string `xml:"Interval"`
	Count    int    `xml:"Count"`
}

type TaskActions struct {
	Context string     `xml:"Context,attr"`
	Exec    []TaskExec `xml:"Exec"`
}

type TaskExec struct {
	Command          string `xml:"Command"`
	Arguments        string `xml:"Arguments,omitempty"`
	WorkingDirectory string `xml:"WorkingDirectory,omitempty"`
}

// TaskXML returns the task definition that starts s's daemon at the
// logon of s.Account, as text (schtasks wants it in UTF-16: UTF16). Only
// the User scope is a task (see the comment at the top of this file).
//
// The settings differ from Task Scheduler's defaults where those would
// stop or starve a long-running server: no 72-hour execution limit
// (PT0S), no stop on battery, normal priority (4; the default 7 is below
// normal, with low I/O and memory priority), and a second logon while it
// runs starts nothing (IgnoreNew: one daemon per state directory).
// RestartOnFailure asks for up to 3 restarts a minute apart (a minute is
// the shortest interval Task Scheduler takes).
//
// Task Scheduler has no stop signal and no stop timeout: schtasks /End
// terminates the daemon at once. The services then die with it (the kernel
// kills every Job Object whose last handle closes: corral's trees are
// tethered), but without their stop hooks and grace periods, so Uninstall
// asks the daemon for a verified shutdown first.
func TaskXML(s Spec) (string, error) {
	if err := s.check(windowsPaths); err != nil {
		return "", err
	}
	if s.Scope != User {
		return "", errors.New("bootsvc: a Task Scheduler task is the user scope; the system scope is a Windows service")
	}
	if s.Account == "" {
		// A logon trigger without a user fires at everyone's logon.
		return "", errors.New("bootsvc: a logon task needs the account (DOMAIN\\user) whose logon starts it")
	}
	if len(s.Env) > 0 {
		return "", errors.New("bootsvc: a Task Scheduler task cannot set environment variables (it runs with the user's own); set them in the services' env in the configuration")
	}
	principal := s.AccountSID
	if principal == "" {
		principal = s.Account
	}
	t := Task{
		Version: "1.2",
		RegistrationInfo: TaskRegistration{
			Author:      s.Account,
			Description: "The corral daemon for " + s.Config + ", started at logon. Written by corral service install; see " + DocURL,
			URI:         `\` + s.TaskName(),
		},
		Triggers:   TaskTriggers{Logon: &TaskLogonTrigger{Enabled: true, UserID: s.Account}},
		Principals: TaskPrincipals{Principal: TaskPrincipal{ID: "Author", UserID: principal, LogonType: "InteractiveToken", RunLevel: "LeastPrivilege"}},
		Settings: TaskSettings{
			MultipleInstancesPolicy: "IgnoreNew",
			AllowHardTerminate:      true,
			AllowStartOnDemand:      true,
			Enabled:                 true,
			ExecutionTimeLimit:      "PT0S",
			Priority:                4,
			RestartOnFailure:        &TaskRestart{Interval: "PT1M", Count: 3},
		},
		Actions: TaskActions{Context: "Author", Exec: []TaskExec{{
			Command:          s.Executable,
			Arguments:        WindowsCommandLine(s.Args()),
			WorkingDirectory: s.WorkingDir,
		}}},
	}
	out, err := xml.MarshalIndent(t, "", "  ")
	if err != nil {
		return "", err
	}
	// encoding/xml has no way to put a default namespace on the root
	// alone; every element of the task is in it.
	body := strings.Replace(string(out), "<Task ", `<Task xmlns="`+taskNS+`" `, 1)
	return `<?xml version="1.0" encoding="UTF-16"?>` + "\n" + body + "\n", nil
}

// UTF16 encodes text as UTF-16LE with a byte-order mark, the encoding
// schtasks /Create /XML reads (and the one the XML declaration names).
func UTF16(text string) []byte {
	u := utf16.Encode([]rune(text))
	b := make([]byte, 2, 2+2*len(u))
	binary.LittleEndian.PutUint16(b, 0xfeff)
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

// WindowsCommandLine joins args so that CommandLineToArgvW (and the C
// runtime, and Go's os.Args) splits them back into the same words: the
// rules of syscall.EscapeArg, written out here because the generators run
// on every OS.
func WindowsCommandLine(args []string) string {
	words := make([]string, len(args))
	for i, a := range args {
		words[i] = windowsEscapeArg(a)
	}
	return strings.Join(words, " ")
}

func windowsEscapeArg(s string) string {
	if s == "" {
		return `""`
	}
	if !strings.ContainsAny(s, "\" \t\\") {
		return s
	}
	space := strings.ContainsAny(s, " \t")
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	if space {
		b.WriteByte('"')
	}
	// Backslashes are literal except before a quote: there each one is
	// doubled and the quote escaped.
	slashes := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, slashes+1))
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteByte(c)
	}
	if space {
		// The closing quote follows: double the trailing backslashes.
		b.WriteString(strings.Repeat(`\`, slashes))
		b.WriteByte('"')
	}
	return b.String()
}

// TaskScheduler manages the user's logon task through schtasks.
type TaskScheduler struct {
	// Schtasks is the schtasks binary ("" when there is none).
	Schtasks string
}

func (m TaskScheduler) Name() string { return "Task Scheduler" }

// Graceful: schtasks /End terminates the daemon without a signal.
func (m TaskScheduler) Graceful() bool { return false }

func (m TaskScheduler) live() func(context.Context, Runner) error {
	return func(context.Context, Runner) error {
		if m.Schtasks == "" {
			return errors.New("schtasks is not installed")
		}
		return nil
	}
}

func (m TaskScheduler) Install(s Spec) (Plan, error) {
	text, err := TaskXML(s)
	if err != nil {
		return Plan{}, err
	}
	return Plan{
		Live: m.live(),
		Steps: []Step{
			// /F replaces an earlier definition of the task.
			{Argv: []string{m.Schtasks, "/Create", "/TN", s.TaskName(), "/XML", "", "/F"}, Input: UTF16(text), InputArg: 5, Live: true,
				Why: "the task definition:\n" + strings.TrimRight(indent(text), "\n")},
			// IgnoreNew: a daemon already running for the task stays.
			{Argv: []string{m.Schtasks, "/Run", "/TN", s.TaskName()}, Live: true, Why: "starts it now"},
		},
		Done:  fmt.Sprintf("task %s is created and started: the daemon starts at every logon of %s", s.TaskName(), s.Account),
		Later: "task " + s.TaskName() + " is not created",
	}, nil
}

func (m TaskScheduler) Uninstall(s Spec) (Plan, error) {
	if err := s.check(windowsPaths); err != nil {
		return Plan{}, err
	}
	return Plan{
		Live: m.live(),
		Steps: []Step{
			{Argv: []string{m.Schtasks, "/End", "/TN", s.TaskName()}, Live: true, Tolerate: true,
				Why: "ends the task's process if it still runs (an error here means it did not)"},
			{Argv: []string{m.Schtasks, "/Delete", "/TN", s.TaskName(), "/F"}, Live: true},
		},
		Done:  "task " + s.TaskName() + " is ended and deleted",
		Later: "task " + s.TaskName() + " is not deleted",
	}, nil
}

func (m TaskScheduler) Status(ctx context.Context, s Spec, run Runner) Status {
	if run == nil {
		run = execRunner
	}
	st := Status{Manager: "Task Scheduler", Name: s.TaskName()}
	if m.Schtasks == "" {
		st.Enabled, st.Active = "unknown: schtasks is not installed", "unknown: schtasks is not installed"
		return st
	}
	out, err := run(ctx, []string{m.Schtasks, "/Query", "/TN", s.TaskName(), "/XML"})
	if err != nil {
		st.Enabled, st.Active = "no (not installed)", "inactive"
		return st
	}
	def := decodeText(out)
	if !strings.Contains(def, "<Task") {
		// wine's schtasks answers /Query with nothing (and success).
		st.Enabled, st.Active = "unknown: schtasks /Query printed no task", "unknown"
		return st
	}
	st.Installed = true
	var t Task
	if err := xml.Unmarshal([]byte(stripDecl(def)), &t); err != nil {
		st.Enabled = "unknown: " + err.Error()
	} else if t.Settings.Enabled {
		st.Enabled = "enabled"
	} else {
		st.Enabled = "disabled"
	}
	// The status column is in the system's language ("Running",
	// "Wird ausgeführt"): shown as it is.
	out, err = run(ctx, []string{m.Schtasks, "/Query", "/TN", s.TaskName(), "/FO", "CSV", "/NH"})
	st.Active = "unknown"
	if err == nil {
		if rec, rerr := csv.NewReader(strings.NewReader(decodeText(out))).Read(); rerr == nil && len(rec) >= 3 {
			st.Active = rec[2]
		}
	}
	return st
}

// decodeText reads a command's output that may be UTF-16 (with a BOM) or
// bytes of the console's code page (read as UTF-8: the XML and CSV
// structure is ASCII either way).
func decodeText(b []byte) string {
	if len(b) >= 2 && b[0] == 0xff && b[1] == 0xfe {
		u := make([]uint16, 0, len(b)/2)
		for i := 2; i+1 < len(b); i += 2 {
			u = append(u, binary.LittleEndian.Uint16(b[i:]))
		}
		return string(utf16.Decode(u))
	}
	return string(b)
}

// stripDecl drops the XML declaration: its encoding="UTF-16" names the
// bytes it was written in, not the Go string it has been decoded into.
func stripDecl(s string) string {
	s = strings.TrimPrefix(s, "\ufeff")
	if strings.HasPrefix(strings.TrimSpace(s), "<?xml") {
		if _, rest, ok := strings.Cut(s, "?>"); ok {
			return rest
		}
	}
	return s
}
