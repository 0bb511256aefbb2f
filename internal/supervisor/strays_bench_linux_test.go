package supervisor

import (
	"context"
	"testing"
	"time"

	"github.com/corral-sh/corral/proctree"
)

// BenchmarkStraysNone is what GET /v1/daemon pays for its strays when
// there are none (the common case): one read of the daemon's children
// lists, with one running tree whose leader is a protected child.
func BenchmarkStraysNone(b *testing.B) {
	s, err := New(mustParse(b, svcTOML("a", "")), Options{StateDir: b.TempDir(), OwnsChildren: true, Containment: proctree.ForceCgroup})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Ensure(ctx, "a"); err != nil {
		b.Skip(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(s.Strays()) != 0 {
			b.Fatal("strays")
		}
	}
}
