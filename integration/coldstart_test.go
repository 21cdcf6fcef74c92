package integration

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestFailoverColdStart: a proxy started after its shard's primary died. Clients wrote to
// the primary directly (semi-sync, AFTER_SYNC) until it was killed. While a replica is
// unreachable (paused) the proxy refuses to promote and says why, statements fail after the
// buffer timeout and no replica is made writable; once every replica is reachable (the
// shard declares semi-sync) it promotes the one that received the most: writes through it
// resume and every write the dead primary acknowledged is on the new primary.
func TestFailoverColdStart(t *testing.T) {
	g := startReplGroup(t, false)
	// Killed while the writers run: the writes in flight then are not acknowledged.
	var acked []int64
	writing := make(chan struct{})
	direct := g.srv[0].DB(t, "fo")
	go func() {
		defer close(writing)
		acked = writeDirect(t.Context(), direct, 4, 4*time.Second)
	}()
	time.Sleep(1500 * time.Millisecond)
	docker(t, "kill", g.srv[0].ContainerID())
	<-writing
	if len(acked) == 0 {
		t.Fatal("no write acknowledged before the kill")
	}
	docker(t, "pause", g.srv[2].ContainerID()) // b3 unreachable when the proxy starts
	cfg := failoverConfig(t, g, map[string]any{"mode": "promote", "semi_sync_declared": true, "buffer_timeout": "2s"})
	cfg.Admin = map[string]any{"listen": "127.0.0.1:0", "open": []string{"status", "metrics"}}
	p := startProxy(t, cfg)
	var m []string
	waitFor(t, 10*time.Second, "the admin address in the log", func() bool {
		m = adminAddrRE.FindStringSubmatch(p.log.String())
		return m != nil
	})
	adminURL := "http://" + m[1]
	db := p.open(t, appUser, appPass, "fo", "interpolateParams=true")

	waitFor(t, 30*time.Second, "the proxy to refuse the promotion because b3 is unreachable", func() bool {
		return grepLines(p.log.String(), "NOT failed over automatically") != "" &&
			grepLines(p.log.String(), "was never probed successfully, and replica b3 is") != ""
	})
	t.Logf("refusal: %s", tail(grepLines(p.log.String(), "NOT failed over automatically"), 400))
	// The refusal and its reason are on the status page and counted.
	if page := httpGet(t, adminURL+"/"); !strings.Contains(page, "refused: primary b1 was never probed successfully, and replica b3 is") {
		t.Errorf("the status page does not show the refusal:\n%s", tail(page, 3000))
	}
	if n := metricValue(t, httpGet(t, adminURL+"/metrics"), "shardproxy_failover_events_total", "kind", "refused"); n < 1 {
		t.Errorf("shardproxy_failover_events_total{kind=\"refused\"} = %d, want at least 1", n)
	}
	start := time.Now()
	_, err := db.ExecContext(t.Context(), "INSERT INTO t (id, writer) VALUES (-1, -1)")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1429 {
		t.Errorf("a write while the promotion is refused: %v, want 1429 after the buffer timeout", err)
	}
	if el := time.Since(start); el < 2*time.Second || el > 10*time.Second {
		t.Errorf("the write failed after %v, want the 2 s buffer timeout", el)
	}
	var ro int
	if err := g.srv[1].DB(t, "").QueryRowContext(t.Context(), "SELECT @@read_only").Scan(&ro); err != nil || ro != 1 {
		t.Errorf("b2 read_only %d (%v) while the promotion is refused, want 1", ro, err)
	}

	docker(t, "unpause", g.srv[2].ContainerID())
	unpaused := time.Now()
	waitFor(t, 60*time.Second, "writes through the proxy to resume on a promoted replica", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err := db.ExecContext(ctx, "INSERT INTO t (id, writer) VALUES (-2, -1)")
		return err == nil
	})
	t.Logf("writes resumed %v after the unreachable replica came back", time.Since(unpaused).Round(10*time.Millisecond))
	promoted, other := g.srv[1], g.srv[2]
	if err := promoted.DB(t, "").QueryRowContext(t.Context(), "SELECT @@read_only").Scan(&ro); err != nil {
		t.Fatal(err)
	}
	if ro == 1 {
		promoted, other = other, promoted
	}
	if line := grepLines(p.log.String(), "promoted a replica"); line == "" || grepLines(line, "old_primary_never_seen=true") == "" {
		t.Errorf("no promotion logged as vouched for by the replicas:\n%s", tail(p.log.String(), 2000))
	}
	got := ids(t, promoted)
	missing := 0
	for _, id := range acked {
		if !got[id] {
			missing++
		}
	}
	if missing > 0 || !got[-2] {
		t.Errorf("%d of %d writes the dead primary acknowledged are missing on the promoted replica %s (the write after the promotion there: %v)",
			missing, len(acked), promoted.Addr(), got[-2])
	}
	t.Logf("%d writes acknowledged before the kill, all on the promoted replica %s", len(acked), promoted.Addr())
	g.sync(t, promoted, other) // the other replica follows the new primary
	if n := metricValue(t, httpGet(t, adminURL+"/metrics"), "shardproxy_failover_events_total", "kind", "promoted"); n != 1 {
		t.Errorf("shardproxy_failover_events_total{kind=\"promoted\"} = %d, want 1", n)
	}
	if page := httpGet(t, adminURL+"/"); !strings.Contains(page, "its replicas vouched for it") {
		t.Errorf("the status page does not show the promotion vouched for by the replicas:\n%s", tail(page, 3000))
	}
}

// writeDirect runs writers clients inserting unique ids straight into fo.t of db's server
// for d (the server may die meanwhile), then returns the ids it acknowledged.
func writeDirect(ctx context.Context, db *sql.DB, writers int, d time.Duration) []int64 {
	db.SetMaxOpenConns(writers)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var acked []int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for n := int64(1); ctx.Err() == nil; n++ {
				id := int64(w)*10_000_000 + n
				if _, err := db.ExecContext(ctx, "INSERT INTO t (id, writer) VALUES (?, ?)", id, w); err != nil {
					time.Sleep(10 * time.Millisecond) // the server is gone: do not spin
					continue
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return acked
}
