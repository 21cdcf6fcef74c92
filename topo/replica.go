package topo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

var _ engine.ReplicaBackend = (*Topology)(nil)

// maxApplyWait bounds the wait of a read for the replica to apply the session's last write
// (read-your-writes); then the read goes to the primary.
const maxApplyWait = 500 * time.Millisecond

// AcquireReplica returns a connection to a replica of shard fit for a read under the
// read/write split (see replicaFit), first waiting (MASTER_GTID_WAIT, at most r.MaxLag and
// maxApplyWait) for
// it to apply r.After; when no replica is fit, or the wait times out or fails, it returns a
// connection to the primary as Acquire does.
func (t *Topology) AcquireReplica(ctx context.Context, shard *rules.Shard, r engine.ReplicaRead) (engine.Conn, error) {
	for _, name := range t.fitReplicas(shard.Name, r.MaxLag) {
		c, ok := t.replicaConn(ctx, shard, name, r)
		if ok {
			return c, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return t.Acquire(ctx, shard, rules.RolePrimary)
}

// fitReplicas names the replicas of shard that may serve a read now, in configuration order.
func (t *Topology) fitReplicas(shard string, maxLag time.Duration) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	st, ok := t.shards[shard]
	if !ok {
		return nil
	}
	var out []string
	for _, r := range st.replicas {
		if _, fenced := t.fenced[r]; !fenced && replicaFit(t.health[r], st.primary, maxLag) {
			out = append(out, r)
		}
	}
	return out
}

// replicaFit reports whether a replica with status h may serve reads: its last probe
// succeeded and found it up, read-only, applying replication (SQL thread running), and its
// heartbeat lag known and under maxLag. A shard without a primary serves no replica reads.
func replicaFit(h health.Status, primary string, maxLag time.Duration) bool {
	rep := h.Replica
	return primary != "" && h.State == health.Up && h.Err == nil && h.ReadOnly && rep != nil &&
		rep.SQLRunning && rep.LagKnown && rep.Lag < maxLag
}

// replicaConn acquires a connection to replica name and, when r.After is set, waits for the
// replica to apply it. ok false: not usable (the connection, if any, went back).
func (t *Topology) replicaConn(ctx context.Context, shard *rules.Shard, name string, r engine.ReplicaRead) (engine.Conn, bool) {
	t.mu.RLock()
	m := t.backends[name]
	t.mu.RUnlock()
	if m == nil || !m.enter() {
		return nil, false
	}
	pc, err := m.pool.AcquireMatching(ctx, nil, shard.Database)
	if err != nil {
		m.leave()
		t.log.Debug("topo: replica read: no connection to the replica; trying elsewhere", "backend", name, "err", err)
		return nil, false
	}
	c := &Conn{Conn: pc, m: m}
	m.track(c)
	if r.After == "" {
		return c, true
	}
	if err := waitApplied(ctx, c, r.After, min(r.MaxLag, maxApplyWait)); err != nil {
		t.log.Debug("topo: replica read: the session's last write is not applied on the replica; trying elsewhere", "backend", name, "err", err)
		t.Release(c)
		return nil, false
	}
	return c, true
}

// waitApplied runs MASTER_GTID_WAIT(pos, timeout) on c: nil once the replica applied pos.
func waitApplied(ctx context.Context, c *Conn, pos string, timeout time.Duration) error {
	if _, err := health.ParseGTIDPos(pos); err != nil {
		return err
	}
	rows, err := c.Query(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT(%s, %.3f)", wire.QuoteString(pos), timeout.Seconds()))
	if err != nil {
		return err
	}
	if len(rows.Values) != 1 || len(rows.Values[0]) != 1 || rows.Values[0][0] == nil || strings.TrimSpace(*rows.Values[0][0]) != "0" {
		return fmt.Errorf("MASTER_GTID_WAIT('%s') timed out after %v", pos, timeout)
	}
	return nil
}
