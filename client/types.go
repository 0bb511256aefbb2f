package client

import "time"

// Process is one member of a service's tree.
type Process struct {
	PID        int       `json:"pid"`
	PPID       int       `json:"ppid"`
	PGID       int       `json:"pgid"`
	Start      time.Time `json:"start"`
	Cmdline    []string  `json:"cmdline"`
	RSS        int64     `json:"rss"`
	State      string    `json:"state"`
	StartTicks uint64    `json:"start_ticks"`
	// CPUSeconds is the processor time it used (with the children it
	// waited for), in seconds; 0 where the OS does not say.
	CPUSeconds float64 `json:"cpu_seconds"`
	// GPUMemory is the GPU memory it holds, in bytes, for members of a
	// service's tree where nvidia-smi answers; nil otherwise.
	GPUMemory *int64 `json:"gpu_memory,omitempty"`
}

// StopReport says what stopping a tree did.
type StopReport struct {
	Signal     string        `json:"signal"`
	Signalled  int           `json:"signalled"`
	Exited     int           `json:"exited_on_signal"`
	Killed     int           `json:"killed"`
	Duration   time.Duration `json:"duration"`    // nanoseconds on the wire
	DurationMS int64         `json:"duration_ms"` // the same in milliseconds
	Survivors  []Process     `json:"survivors"`
	// Unverified, when not empty, says why the tree's containment could
	// not prove it empty although no member was found: the stop is not
	// verified.
	Unverified string `json:"unverified,omitempty"`
}

// ExitInfo says how an instance ended.
type ExitInfo struct {
	At          time.Time `json:"at"`
	Code        int       `json:"code"`
	Signaled    bool      `json:"signaled,omitempty"`
	Description string    `json:"description"`
	Requested   bool      `json:"requested,omitempty"`
}

// Service is a service's status.
type Service struct {
	Name         string      `json:"name"`
	State        string      `json:"state"`
	Reason       string      `json:"reason,omitempty"`
	Code         string      `json:"code,omitempty"` // why a failure state is what it is (see docs/api.md)
	Since        time.Time   `json:"since"`
	Instance     string      `json:"instance,omitempty"`
	PID          int         `json:"pid,omitempty"`          // the main process
	Leader       int         `json:"leader,omitempty"`       // the first process of the instance
	MainFrom     string      `json:"main_from,omitempty"`    // how the main process was found, when it is not the leader
	PreviousPID  int         `json:"previous_pid,omitempty"` // the main process before the last hand-over
	Mechanism    string      `json:"mechanism,omitempty"`
	Profile      string      `json:"profile,omitempty"`
	Args         []string    `json:"args,omitempty"`     // the instance's own arguments (launch options)
	EnvKeys      []string    `json:"env_keys,omitempty"` // names of the instance's own environment variables; values are not shown
	StartedAt    time.Time   `json:"started_at,omitzero"`
	Restarts     int         `json:"restarts"`
	Starts       int         `json:"starts"`
	NextStart    time.Time   `json:"next_start,omitzero"`
	LastExit     *ExitInfo   `json:"last_exit,omitempty"`
	ExternalPIDs []int       `json:"external_pids,omitempty"`
	LastStop     *StopReport `json:"last_stop,omitempty"`
	Limits       *Limits     `json:"limits,omitempty"`
	Frozen       bool        `json:"frozen,omitempty"`
	KernelLimit  bool        `json:"kernel_limit,omitempty"`
	Members      []Process   `json:"members,omitempty"`
	MemberCount  int         `json:"member_count"`
	RSS          int64       `json:"rss"`
	// CPUSeconds is the processor time of the tree's live members, in
	// seconds (a member's share leaves it when the member exits).
	CPUSeconds float64 `json:"cpu_seconds"`
	// GPUMemory is the GPU memory of the tree, in bytes; nil where
	// nvidia-smi is not installed or failed.
	GPUMemory *int64 `json:"gpu_memory,omitempty"`
	// Profiles names the service's profiles, sorted.
	Profiles []string `json:"profiles"`
	// LastStopGPU is the GPU check of the last stop, where nvidia-smi
	// answered and the tree held GPU memory before it.
	LastStopGPU *GPURelease `json:"last_stop_gpu,omitempty"`
}

// GPURelease says whether the GPU memory a stopped tree held was released.
type GPURelease struct {
	Held     int64 `json:"held"`     // bytes its members held just before the stop
	Holders  int   `json:"holders"`  // members that held any
	Released bool  `json:"released"` // none of them is listed by nvidia-smi after the stop
	Left     []int `json:"left"`     // pids still listed after the stop
}

// Limits are a service's runaway limits and what a breach does.
type Limits struct {
	Processes int     `json:"processes,omitempty"`
	Memory    int64   `json:"memory,omitempty"`
	ForkRate  float64 `json:"fork_rate,omitempty"`
	GPUMemory int64   `json:"gpu_memory,omitempty"`
	OnLimit   string  `json:"on_limit"`
}

// Daemon describes the running daemon.
type Daemon struct {
	PID      int       `json:"pid"`
	Version  string    `json:"version"`
	Config   string    `json:"config"`
	StateDir string    `json:"state_dir"`
	Started  time.Time `json:"started"`
	// Mechanism is the containment tier new trees get: "cgroup-v2",
	// "pgroup", "job-object", or "none" when no tree can start.
	Mechanism string `json:"mechanism"`
	// Containment is the one requested: "auto", "cgroup" or "pgroup".
	Containment string `json:"containment"`
	// MechanismNote says why Mechanism is not the platform's best, or
	// why no tree can start; "" otherwise.
	MechanismNote string `json:"mechanism_note,omitempty"`
	// ConfigSHA256 is the SHA-256 (hex) of the configuration file as the
	// daemon last read it (at its start or the last reload that took
	// effect), at ConfigRead; a file whose digest differs has changed since.
	ConfigSHA256 string    `json:"config_sha256"`
	ConfigRead   time.Time `json:"config_read"`
	// ExitWith is the process whose exit shuts the daemon down, 0 for none.
	ExitWith int `json:"exit_with,omitempty"`
	// Dashboard is where the dashboard listens (127.0.0.1:PORT), "" when
	// it does not run; Client.Dashboard gives its URL.
	Dashboard string `json:"dashboard,omitempty"`
	// Strays are processes re-parented to the daemon that no live tree
	// holds: stopped with their tree when attributed, at shutdown
	// otherwise. Always empty where there is no subreaper (not Linux).
	Strays []Stray `json:"strays"`
}

// LogLine is one line of a service's output.
type LogLine struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"`
	Text   string    `json:"text"`
}

// Event is one entry of the event stream.
type Event struct {
	Seq      uint64            `json:"seq"`
	Time     time.Time         `json:"time"`
	Kind     string            `json:"kind"`
	Service  string            `json:"service,omitempty"`
	Instance string            `json:"instance,omitempty"`
	PID      int               `json:"pid,omitempty"`
	Message  string            `json:"message"`
	Fields   map[string]string `json:"fields,omitempty"`
	// Spawn events: what identifies the instance across crashes.
	Cgroup  string   `json:"cgroup,omitempty"`
	Start   uint64   `json:"start,omitempty"`
	Boot    string   `json:"boot,omitempty"`
	Cmdline []string `json:"cmdline,omitempty"`
}

// ReloadResult says what a reload changed.
type ReloadResult struct {
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Changed   []string `json:"changed"`
	Unchanged []string `json:"unchanged"`
}

// Survivor is a supervised process still alive after a shutdown.
type Survivor struct {
	Service  string   `json:"service"`
	Instance string   `json:"instance"`
	PID      int      `json:"pid"`
	Cmdline  []string `json:"cmdline"`
}

// ShutdownResult is the outcome of a verified shutdown.
type ShutdownResult struct {
	Stopped   []string   `json:"stopped"`
	Errors    []string   `json:"errors"`
	Survivors []Survivor `json:"survivors"`
	// Unverified names each service whose tree could not be proved empty
	// in its tier ("SERVICE: why"): the shutdown is not verified then.
	Unverified []string `json:"unverified"`
}

// Stray is a process re-parented to the daemon that no live tree holds
// (an orphan of one of its trees that left its group and rewrote its
// environment).
type Stray struct {
	PID        int       `json:"pid"`
	PPID       int       `json:"ppid"`
	PGID       int       `json:"pgid"`
	Start      time.Time `json:"start"`
	StartTicks uint64    `json:"start_ticks"`
	Cmdline    []string  `json:"cmdline"`
	// Service and Instance: its tree, where something says; "" otherwise.
	Service  string `json:"service,omitempty"`
	Instance string `json:"instance,omitempty"`
	// AttributedBy: "marker", "process group", "ancestry", or "".
	AttributedBy string `json:"attributed_by,omitempty"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Message string `json:"error"`
	// Code is the machine-readable kind of the failure (the Code*
	// constants); empty when the answer was not the daemon's JSON.
	Code string `json:"code"`
	// Service is the service the error is about: the one asked for, or
	// the dependency that failed; empty for errors about no service.
	Service string `json:"service"`
	Status  int    `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// ReapReport says what reclaiming one leftover instance found and did.
type ReapReport struct {
	Instance string    `json:"instance"`
	Service  string    `json:"service"`
	Cgroup   string    `json:"cgroup,omitempty"`
	Found    []Process `json:"found"`
	Killed   int       `json:"killed"`
	Reused   int       `json:"reused,omitempty"`
	// Gone: nothing of it was left; nothing was done.
	Gone bool `json:"gone,omitempty"`
	// Unjournaled: found by its cgroup or markers, not by the journal.
	Unjournaled bool `json:"unjournaled,omitempty"`
	// Unverified says why the tier could not prove the tree empty after
	// the kill; "" when it could.
	Unverified string `json:"unverified,omitempty"`
	// Zombies: killed members another parent had not reaped in time.
	Zombies []int  `json:"zombies,omitempty"`
	Error   string `json:"error,omitempty"`
}
