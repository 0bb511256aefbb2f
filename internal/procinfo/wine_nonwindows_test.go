//go:build !windows

package procinfo

func underWine() bool { return false }
