//go:build !linux

package service

import "context"

func waitGone(ctx context.Context, clock Clock, pid int, start uint64) error {
	return pollGone(ctx, clock, pid, start)
}
