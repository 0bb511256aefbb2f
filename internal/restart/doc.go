// Package restart owns the restart policy of a service as pure functions:
// given the policy, the service's restart history and how an instance ended,
// Decide says whether to start it again, after what delay, or to give up
// (the start limit) and when to try again on its own (re-arm).
//
// The first restart after a crash is near immediate (Backoff, 100ms by
// default). Only consecutive quick failures, of instances that never became
// ready and ended before StableAfter, double the delay; the end of an
// instance that started successfully resets it. The start limit (Burst starts
// within Window) stops a crash loop whatever the delays.
//
// Nothing here sleeps, reads a clock or draws random numbers by itself: the
// caller passes the time and a jitter source, so every decision is testable
// with a fake clock.
package restart
