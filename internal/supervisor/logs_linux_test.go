package supervisor

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// A reload that changes only logs keys restarts nothing: the running
// sink takes the new bounds at once.
func TestReloadOfLogsKeysRestartsNothing(t *testing.T) {
	s := newSup(t, svcTOML("a", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := s.Ensure(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	sink, _ := s.Logs("a")
	w := sink.Writer("stdout")
	for i := range 50 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	res, err := s.Reload(ctx, mustParse(t, "[corral]\nlogs = { lines = 10 }\n"+svcTOML("a", `logs = { keep = 1, max_size = "1MB" }`)))
	if err != nil || !slices.Equal(res.Unchanged, []string{"a"}) {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	if v, _ := s.Inspect("a"); v.Instance != st.Instance {
		t.Fatalf("a logs key restarted the service: %s, then %s", st.Instance, v.Instance)
	}
	if got := sink.Tail(0); len(got) != 10 || got[9].Text != "line 49" {
		t.Fatalf("after lines = 10: %d lines kept", len(got))
	}
}
