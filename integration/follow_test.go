package integration

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestFailoverFollow: a shard in follow mode; under a write loop, a replica is promoted by
// hand as an external tool would (old primary locked and read_only=1, the replica applies everything,
// STOP SLAVE, read_only=0). The proxy follows within 3 s, every acknowledged write is on the
// new primary, and the old primary gets no write once it was left.
func TestFailoverFollow(t *testing.T) {
	g := startReplGroup(t, false)
	metricsAddr := freeAddr(t)
	p := startProxyArgs(t, failoverConfig(t, g, map[string]any{"mode": "follow"}), "--metrics-addr", metricsAddr)
	probe := p.open(t, appUser, appPass, "fo")
	waitWritesThrough(t, probe, 10*time.Second, "the proxy to write through to the primary")
	ctx, cancel := context.WithCancel(t.Context())
	done := startWriteLoad(ctx, t, p, 8, 2_000_000_000)
	time.Sleep(time.Second) // steady load before the switch
	switchAt := time.Now()
	// The backend account is root, which read_only does not stop: like a switchover tool,
	// the test also takes the global read lock on the old primary (held to the end).
	lock, err := g.srv[0].DB(t, "").Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	mustExec(t, lock, "FLUSH TABLES WITH READ LOCK", "SET GLOBAL read_only = 1")
	next := g.srv[1].DB(t, "")
	g.sync(t, g.srv[0], g.srv[1])
	mustExec(t, next, "STOP SLAVE", "SET GLOBAL read_only = 0")
	promotedAt := time.Now()
	time.Sleep(5 * time.Second) // keep writing until writes have resumed for a while
	cancel()
	res := <-done
	gap := longestGap(res.acks, switchAt)
	after := ackedAfter(res.acks, promotedAt)
	t.Logf("FOLLOW gap=%.3fs manual_promotion=%.3fs acked=%d acked_after=%d failed=%d", gap.Seconds(), promotedAt.Sub(switchAt).Seconds(), len(res.acks), after, res.failed)
	t.Log(grepLines(p.log.String(), "topo:"))
	if after == 0 {
		t.Fatalf("no write acknowledged after the promotion")
	}
	if gap >= 3*time.Second {
		t.Errorf("longest gap between acknowledged writes: %v, want < 3s", gap)
	}
	var serverID int
	if err := probe.QueryRowContext(t.Context(), "SELECT @@server_id").Scan(&serverID); err != nil || serverID != 2 {
		t.Fatalf("the proxy after the promotion reads server_id %d (%v), want 2", serverID, err)
	}
	if missing := missingOn(t, g.srv[1], res.acks); missing > 0 {
		t.Errorf("%d of %d acknowledged writes are missing on the new primary", missing, len(res.acks))
	}
	// The old primary was left: nothing written after the switch reached it.
	onOld := ids(t, g.srv[0])
	for _, a := range res.acks {
		if a.at.After(promotedAt.Add(3*time.Second)) && onOld[a.id] {
			t.Fatalf("write %d acknowledged after the switch is on the old primary", a.id)
		}
	}
	if !strings.Contains(p.log.String(), "topo: followed a new primary") {
		t.Error("the proxy did not log the switch")
	}
	body := httpGet(t, "http://"+metricsAddr+"/metrics")
	if n := metricValue(t, body, "shardproxy_failover_duration_seconds_count", "mode", "follow"); n != 1 {
		t.Errorf("shardproxy_failover_duration_seconds_count{mode=\"follow\"} = %d, want 1", n)
	}
	if n := metricValue(t, body, "shardproxy_failover_events_total", "kind", "promoted"); n != 1 {
		t.Errorf("shardproxy_failover_events_total{kind=\"promoted\"} = %d, want 1", n)
	}
}
