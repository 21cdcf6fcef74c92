package integration

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// loopResult is what one kind of client saw during a failover: statements that succeeded
// before and after the fault, and every error.
type loopResult struct {
	before, after int
	errs          []error
}

// loop runs stmt through db from clients goroutines until ctx ends.
func loop(ctx context.Context, db *sql.DB, clients int, faultAt func() time.Time, stmt func(n int64) error) *loopResult {
	var mu sync.Mutex
	res := &loopResult{}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for n := int64(0); ctx.Err() == nil; n++ {
				err := stmt(int64(c)*10_000_000 + n)
				if ctx.Err() != nil && err != nil {
					return // the test ended during the statement
				}
				mu.Lock()
				switch {
				case err != nil:
					res.errs = append(res.errs, err)
				case faultAt().IsZero():
					res.before++
				default:
					res.after++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return res
}

// TestFailoverReadsRetried: while clients read (text and server-side prepared statements)
// and write through the proxy as fast as they can, the shard's primary is killed. No read
// fails: a read whose backend connection died before any of its answer reached the client
// runs again on the promoted replica (after waiting in the failover buffer). A write that was
// in flight is reported honestly as a lost connection: the client's connection is closed
// (go-sql-driver: invalid connection), never an error packet, never a silent retry.
func TestFailoverReadsRetried(t *testing.T) {
	g := startReplGroup(t, false)
	g.srv[0].Exec(t, "INSERT INTO fo.t (id, writer) VALUES (1, 1)")
	p := failoverProxy(t, g)
	probe := p.open(t, appUser, appPass, "fo")
	waitFor(t, 10*time.Second, "the proxy to reach the primary", func() bool {
		var w int
		return probe.QueryRowContext(t.Context(), "SELECT writer FROM t WHERE id = 1").Scan(&w) == nil
	})
	params := []string{"timeout=2s", "readTimeout=20s", "writeTimeout=20s"}
	text := p.open(t, appUser, appPass, "fo", append(params, "interpolateParams=true")...)
	prep := p.open(t, appUser, appPass, "fo", params...)
	writes := p.open(t, appUser, appPass, "fo", append(params, "interpolateParams=true")...)
	read := func(db *sql.DB) func(int64) error {
		return func(int64) error {
			var w int
			return db.QueryRowContext(context.Background(), "SELECT writer FROM t WHERE id = ?", 1).Scan(&w)
		}
	}

	var mu sync.Mutex
	var faultAt time.Time
	at := func() time.Time { mu.Lock(); defer mu.Unlock(); return faultAt }
	ctx, cancel := context.WithCancel(t.Context())
	results := make([]*loopResult, 3)
	var wg sync.WaitGroup
	wg.Go(func() { results[0] = loop(ctx, text, 4, at, read(text)) })
	wg.Go(func() { results[1] = loop(ctx, prep, 4, at, read(prep)) })
	wg.Go(func() {
		results[2] = loop(ctx, writes, 4, at, func(id int64) error {
			_, err := writes.ExecContext(context.Background(), "INSERT INTO t (id, writer) VALUES (?, 2)", 1_000_000_000+id)
			return err
		})
	})
	time.Sleep(time.Second) // steady load before the fault
	mu.Lock()
	faultAt = time.Now()
	mu.Unlock()
	docker(t, "kill", g.srv[0].ContainerID())
	time.Sleep(6 * time.Second)
	cancel()
	wg.Wait()

	for i, name := range []string{"text reads", "prepared reads", "writes"} {
		r := results[i]
		t.Logf("FAILOVER-READS %s: %d before the kill, %d after, %d failed", name, r.before, r.after, len(r.errs))
		if r.before == 0 || r.after == 0 {
			t.Errorf("%s: %d succeeded before the kill and %d after: the load did not run through the failover", name, r.before, r.after)
		}
	}
	for i, name := range []string{"text read", "prepared read"} {
		for _, err := range results[i].errs {
			t.Errorf("a %s failed across the failover: %v", name, err)
		}
	}
	for _, err := range results[2].errs {
		var me *mysql.MySQLError
		if errors.As(err, &me) {
			t.Errorf("a write failed with an error packet (%v), want its connection closed: the outcome is unknown", err)
		} else if !errors.Is(err, mysql.ErrInvalidConn) {
			t.Logf("a write failed: %v", err)
		}
	}
	if len(results[2].errs) == 0 {
		t.Errorf("no write in flight at the kill was reported lost: 4 writers never idle, one should have been")
	}
}
