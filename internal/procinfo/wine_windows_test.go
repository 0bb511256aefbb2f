package procinfo

import (
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// underWine reports whether this Windows is wine (ntdll exports
// wine_get_version there).
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

func TestWindowsReadSelf(t *testing.T) {
	argv, err := Cmdline(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(argv, os.Args) {
		t.Fatalf("command line %q, want %q", argv, os.Args)
	}
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() || st.RSS == 0 || st.Zombie() {
		t.Fatalf("stat %+v: want parent %d, a working set, running", st, os.Getppid())
	}
	if age := time.Since(StartTime(st.StartTicks)); age < 0 || age > time.Hour {
		t.Fatalf("started %v ago (ticks %d)", age, st.StartTicks)
	}
	if _, err := ReadStat(1 << 30); err == nil {
		t.Fatal("a pid that cannot exist was read")
	}
}
