package proctree

// JobZeroMessages counts the job-emptied messages the completion port has
// dispatched.
func JobZeroMessages() int64 { return jobPort.zeroMessages.Load() }
