package pool

import (
	"fmt"
	"slices"
	"testing"
	"time"

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

// BenchmarkKillQuery measures one KILL QUERY (of a connection id that does not exist, so
// the backend answers 1094 at once) over a freshly dialed connection, as every kill was
// sent before KillReserve, and over the reserve connection. The difference is the dial and
// login a timed-out statement's client used to wait for; it grows with machine load.
func BenchmarkKillQuery(b *testing.B) {
	srv := mariadbtest.Start(b)
	for _, reserve := range []bool{false, true} {
		b.Run(fmt.Sprintf("reserve=%v", reserve), func(b *testing.B) {
			p, err := New(Options{Addr: srv.Addr(), User: srv.User, Password: srv.Password, KillReserve: reserve})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			c, err := p.Acquire(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			p.Release(c)
			for reserve && !p.reserve.ready() {
				<-time.After(time.Millisecond) // the keeper dials it right after the first dial
			}
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				if err := p.KillQuery(b.Context(), 1<<31); !isBackendError(err) {
					b.Fatalf("KillQuery: %v", err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(took[len(took)-1].Microseconds()), "max-µs")
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
