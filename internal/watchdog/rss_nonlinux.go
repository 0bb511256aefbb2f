//go:build !linux

package watchdog

// RSSCache is not available here; Sum reports nothing and callers fall back
// to full member snapshots.
type RSSCache struct{}

// NewRSSCache returns nil: no cache on this platform.
func NewRSSCache() *RSSCache { return nil }

// Sum is never called on a nil cache.
func (c *RSSCache) Sum(pids []int) (int64, []int) { return 0, pids }

// Close does nothing.
func (c *RSSCache) Close() {}
