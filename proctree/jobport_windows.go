package proctree

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Every job reports to one completion port, read by one goroutine: the
// kernel posts JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO the moment a job's last
// process ends, so waiting for an empty job needs no polling. Polling stays
// as a slow safety net (a full port drops messages).

const jobMsgActiveProcessZero = 4 // JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO

type associateCompletionPort struct {
	CompletionKey  uintptr
	CompletionPort windows.Handle
}

var jobPort struct {
	once sync.Once
	port windows.Handle // 0 if it could not be created
	err  error

	// mu guards jobs and next.
	mu   sync.Mutex
	jobs map[uintptr]*jobBackend
	next uintptr

	zeroMessages atomic.Int64 // ACTIVE_PROCESS_ZERO messages dispatched, for tests
}

func startJobPort() {
	jobPort.port, jobPort.err = windows.CreateIoCompletionPort(windows.InvalidHandle, 0, 0, 1)
	if jobPort.err != nil {
		jobPort.port = 0
		return
	}
	jobPort.jobs = map[uintptr]*jobBackend{}
	go func() {
		for {
			var msg uint32
			var key uintptr
			var ov *windows.Overlapped
			if err := windows.GetQueuedCompletionStatus(jobPort.port, &msg, &key, &ov, windows.INFINITE); err != nil {
				continue
			}
			if msg != jobMsgActiveProcessZero {
				continue
			}
			// Counted even for a job already released: its waiter may have
			// seen the count reach zero before the message came.
			jobPort.zeroMessages.Add(1)
			jobPort.mu.Lock()
			b := jobPort.jobs[key]
			jobPort.mu.Unlock()
			if b != nil {
				b.emptied()
			}
		}
	}()
}

// watchJob associates b's job with the port; false means b must poll.
func watchJob(b *jobBackend, job windows.Handle) bool {
	jobPort.once.Do(startJobPort)
	if jobPort.port == 0 {
		return false
	}
	jobPort.mu.Lock()
	jobPort.next++
	key := jobPort.next
	jobPort.jobs[key] = b
	jobPort.mu.Unlock()
	info := associateCompletionPort{CompletionKey: key, CompletionPort: jobPort.port}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectAssociateCompletionPortInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		unwatchJob(key)
		return false
	}
	b.portKey = key
	return true
}

func unwatchJob(key uintptr) {
	if key == 0 {
		return
	}
	jobPort.mu.Lock()
	delete(jobPort.jobs, key)
	jobPort.mu.Unlock()
}
