package integration

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
)

// gtidIOPos reads what replica s received (SHOW SLAVE STATUS: Gtid_IO_Pos).
func gtidIOPos(t *testing.T, s *mariadbtest.Server) string {
	t.Helper()
	rows, err := s.DB(t, "").QueryContext(t.Context(), "SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]any, len(cols))
	for i := range vals {
		vals[i] = new(sql.NullString)
	}
	if !rows.Next() {
		t.Fatalf("%s: no replication status", s.Addr())
	}
	if err := rows.Scan(vals...); err != nil {
		t.Fatal(err)
	}
	for i, c := range cols {
		if c == "Gtid_IO_Pos" {
			return vals[i].(*sql.NullString).String
		}
	}
	t.Fatal("SHOW SLAVE STATUS has no Gtid_IO_Pos")
	return ""
}

// TestSharedTopologyResume: the leader dies in the middle of a promotion. The test plays
// the dead leader's part: it stopped the replicas' IO threads, let b2 apply what it received
// and promoted it, but published nothing. The next leader carries the promotion on: it keeps
// b2 (it holds every write; another choice would lose them), repoints b3 to it, fences b1,
// and every write the proxies acknowledged is on b2.
func TestSharedTopologyResume(t *testing.T) {
	f := newSharedFleet(t, false)
	// A 5 s lease: the test does the dead leader's steps before the next one takes over.
	proxies := map[string]*proxy{"p1": f.startTTL(t, "p1", "5s"), "p2": f.startTTL(t, "p2", "5s")}
	var leader string
	waitFor(t, 15*time.Second, "a leader and a published topology", func() bool {
		leader, _ = f.leader(t)
		return leader != "" && f.shared(t).Version > 0
	})
	next := "p1"
	if leader == "p1" {
		next = "p2"
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := startWriteLoad(ctx, t, proxies[next], 4, 1_000_000_000)
	time.Sleep(time.Second)

	if err := proxies[leader].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-proxies[leader].done
	killed := time.Now()
	docker(t, "kill", f.g.srv[0].ContainerID())
	// The dead leader's half promotion.
	b2, b3 := f.g.srv[1], f.g.srv[2]
	b2.Exec(t, "STOP SLAVE IO_THREAD")
	b3.Exec(t, "STOP SLAVE IO_THREAD")
	var waited int
	if err := b2.DB(t, "").QueryRowContext(t.Context(), "SELECT MASTER_GTID_WAIT(?, 10)", gtidIOPos(t, b2)).Scan(&waited); err != nil || waited != 0 {
		t.Fatalf("b2 did not apply what it received: %d %v", waited, err)
	}
	b2.Exec(t, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL rpl_semi_sync_master_enabled = ON", "SET GLOBAL read_only = 0")
	halfDone := time.Since(killed)
	if l, _ := f.leader(t); l != leader {
		t.Fatalf("%s led before the half promotion was done (%v after the leader died): the test cannot play the dead leader", l, halfDone)
	}

	var doc = f.shared(t)
	waitFor(t, 30*time.Second, "the next leader to publish a new primary", func() bool {
		doc = f.shared(t)
		return doc.Leader == next && doc.Shards["s0"].Primary != "b1"
	})
	published := time.Since(killed)
	time.Sleep(3 * time.Second) // writes go on on the new primary
	cancel()
	res := <-done
	t.Logf("SHARED-RESUME half promotion done %.3fs after the leader died; %s published %s as primary %.3fs after; acked=%d failed=%d",
		halfDone.Seconds(), next, doc.Shards["s0"].Primary, published.Seconds(), len(res.acks), res.failed)
	for _, l := range strings.Split(proxies[next].log.String(), "\n") {
		if strings.Contains(l, "topo:") || strings.Contains(l, "coord:") {
			t.Logf("%s: %s", next, l)
		}
	}
	if doc.Shards["s0"].Primary != "b2" || doc.Fenced["b1"] == "" {
		t.Fatalf("shared topology after the resumed promotion: %+v, want b2 primary and b1 fenced", doc)
	}
	if missing := missingOn(t, b2, res.acks); missing > 0 {
		t.Errorf("%d of %d acknowledged writes are missing on b2", missing, len(res.acks))
	}
	if after := longestGap(res.acks, killed); len(res.acks) == 0 || res.acks[len(res.acks)-1].at.Before(killed) {
		t.Errorf("no write acknowledged after the resumed promotion (longest gap %v)", after)
	}
	checkServerID(t, proxies[next], next, 2)
	f.g.sync(t, b2, b3) // b3 replicates from b2
}
