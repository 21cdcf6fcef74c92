package pool

import (
	"fmt"
	"testing"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
)

// BenchmarkAcquireRelease measures the hot path: Acquire of an idle connection and Release
// of a clean one, from parallel goroutines (no I/O once the connections exist). With
// MaxOpen=1 the goroutines contend and most Acquires wait for a hand-off.
func BenchmarkAcquireRelease(b *testing.B) {
	srv := mariadbtest.Start(b)
	for _, maxOpen := range []int{1, 4, 64} {
		b.Run(fmt.Sprintf("MaxOpen=%d", maxOpen), func(b *testing.B) {
			p, err := New(Options{Addr: srv.Addr(), User: srv.User, Password: srv.Password, MaxOpen: maxOpen})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c, err := p.Acquire(b.Context())
					if err != nil {
						b.Error(err)
						return
					}
					p.Release(c)
				}
			})
			s := p.Stats()
			b.ReportMetric(float64(s.Dials), "dials")
			b.ReportMetric(float64(s.WaitCount)/float64(b.N), "waits/op")
		})
	}
}

// BenchmarkClosedByServer measures the check every Acquire makes before handing out a
// connection: one non-blocking MSG_PEEK recv on its socket.
func BenchmarkClosedByServer(b *testing.B) {
	srv := mariadbtest.Start(b)
	p, err := New(Options{Addr: srv.Addr(), User: srv.User, Password: srv.Password})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	c, err := p.Acquire(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Release(c)
	b.ReportAllocs()
	for b.Loop() {
		if c.closedByServer() {
			b.Fatal("closedByServer on a live connection")
		}
	}
}
