package integration

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
)

// The write load of the failover, follow and switchover tests (one proxy or a shared fleet
// of them): clients insert unique ids into fo.t through a proxy while a primary is lost or
// replaced, and the tests read what was acknowledged, when, and whether it is on the new
// primary.

// ack is one write the proxy acknowledged.
type ack struct {
	id int64
	at time.Time
}

// writeLoad runs writers clients inserting unique ids through the proxy as fast as they can
// until ctx ends, and returns every acknowledged write and the count of failed ones.
func writeLoad(ctx context.Context, t *testing.T, p *proxy, writers int, base int64) ([]ack, int) {
	db := p.open(t, appUser, appPass, "fo", "interpolateParams=true", "timeout=2s", "readTimeout=20s", "writeTimeout=20s")
	db.SetMaxOpenConns(writers)
	var mu sync.Mutex
	var acks []ack
	failed := 0
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for n := int64(0); ctx.Err() == nil; n++ {
				id := base + int64(w)*10_000_000 + n
				_, err := db.ExecContext(context.Background(), "INSERT INTO t (id, writer) VALUES (?, ?)", id, w)
				mu.Lock()
				if err == nil {
					acks = append(acks, ack{id, time.Now()})
				} else {
					failed++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return acks, failed
}

// longestGap is the longest time without an acknowledgement between from and the last one.
func longestGap(acks []ack, from time.Time) time.Duration {
	times := make([]time.Time, 0, len(acks)+1)
	times = append(times, from)
	for _, a := range acks {
		if a.at.After(from) {
			times = append(times, a.at)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(times); i++ {
		gap = max(gap, times[i].Sub(times[i-1]))
	}
	return gap
}

// ids reads the ids of fo.t on s.
func ids(t testing.TB, s *mariadbtest.Server) map[int64]bool {
	t.Helper()
	rows, err := s.DB(t, "").QueryContext(t.Context(), "SELECT id FROM fo.t")
	if err != nil {
		t.Fatalf("reading fo.t on %s: %v", s.Addr(), err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// writeResult is what a write load through one proxy got: every acknowledged write and the
// count of failed ones.
type writeResult struct {
	acks   []ack
	failed int
}

// startWriteLoad runs writeLoad in the background until ctx ends; the channel gives its
// result once every writer has stopped (its last statement answered).
func startWriteLoad(ctx context.Context, t *testing.T, p *proxy, writers int, base int64) <-chan writeResult {
	done := make(chan writeResult, 1)
	go func() {
		a, f := writeLoad(ctx, t, p, writers, base)
		done <- writeResult{a, f}
	}()
	return done
}

// startFleetLoad starts four writers through each proxy of a shared fleet, named in names,
// their ids a billion apart per proxy.
func startFleetLoad(ctx context.Context, t *testing.T, proxies map[string]*proxy, names []string) map[string]<-chan writeResult {
	results := map[string]<-chan writeResult{}
	for i, id := range names {
		results[id] = startWriteLoad(ctx, t, proxies[id], 4, int64(i+1)*1_000_000_000)
	}
	return results
}

// ackedAfter counts the writes acknowledged after at.
func ackedAfter(acks []ack, at time.Time) int {
	n := 0
	for _, a := range acks {
		if a.at.After(at) {
			n++
		}
	}
	return n
}

// missingOn counts the acknowledged writes that s does not hold.
func missingOn(t testing.TB, s *mariadbtest.Server, acks []ack) int {
	t.Helper()
	have := ids(t, s)
	missing := 0
	for _, a := range acks {
		if !have[a.id] {
			missing++
		}
	}
	return missing
}

// waitWritesThrough waits until a write through probe (the row of id -1) reaches the
// primary.
func waitWritesThrough(t testing.TB, probe *sql.DB, within time.Duration, what string) {
	t.Helper()
	waitFor(t, within, what, func() bool {
		_, err := probe.ExecContext(t.Context(), "INSERT INTO t (id, writer) VALUES (-1, -1) ON DUPLICATE KEY UPDATE writer = -1")
		return err == nil
	})
}
