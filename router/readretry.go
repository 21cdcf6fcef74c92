package router

import (
	"context"
	"errors"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// retryRead runs attempt, writing to w, and runs it once more when the statement is a
// retryable read (s.reads.retryable: planner.RetryableRead), the session holds no backend state (no
// transaction, no kept connection, no sticky state, no table locks), and its backend
// connection broke before any packet of the answer reached the client, with time left. The
// second attempt acquires a fresh connection through the topology, so it may wait in the
// failover buffer for a shard's new primary. what names the statement's target in the log.
func (s *Session) retryRead(ctx context.Context, what string, w wire.PacketWriter, attempt func(wire.PacketWriter) error) error {
	if !s.reads.retryable || !s.mayRetry() {
		return attempt(w)
	}
	cw := &countingWriter{w: w}
	err := attempt(cw)
	if err == nil || cw.n > 0 || !errors.Is(err, engine.ErrBackendIO) || errors.Is(err, sqlerr.ErrFatal) ||
		ctx.Err() != nil || engine.DeadlinePassed(ctx) || !s.mayRetry() {
		return err
	}
	s.r.log.Debug("retrying a read on a fresh backend connection", "conn_id", s.info.ConnID, "shard", what, "err", err)
	return attempt(w)
}

// mayRetry reports whether the session keeps no state on backend connections that a second
// attempt of a read would miss or lose.
func (s *Session) mayRetry() bool {
	return len(s.pinned) == 0 && !s.sticky && !s.locks.locked() && !s.inTransaction() && !s.txnOpen()
}

// runScatterRead runs a scatter SELECT under the session's read/write split (each shard's
// part goes to a replica of that shard fit for the read: acquireReplica, with the session's
// last GTID there) and retries it once after a lost backend connection (retryRead).
// split is the statement's split (planner.ReadView.StatementSplit or PreparedSplit).
func (s *Session) runScatterRead(ctx context.Context, snap *rules.Snapshot, sp *plan.Scatter, split rules.ReadSplit, more bool, w wire.PacketWriter, bin bool) error {
	s.reads.replica = split
	defer func() { s.reads.replica = rules.ReadSplit{} }()
	return s.retryRead(ctx, "scatter", w, func(w wire.PacketWriter) error {
		return s.runScatter(ctx, snap, sp, more, w, bin)
	})
}

// prepareBackend prepares sql on a connection to shard, describing it into k, and gives the
// connection back. COM_STMT_PREPARE runs nothing, so when the connection breaks during it
// and the session holds no backend state, sql is prepared once more on a fresh connection
// (through the topology: it may wait in the failover buffer), whatever the statement.
func (s *Session) prepareBackend(ctx context.Context, snap *rules.Snapshot, shard *rules.Shard, sql string, k *engine.Collector) (engine.Stmt, error) {
	for attempt := 0; ; attempt++ {
		k.Pkts = k.Pkts[:0]
		c, err := s.acquire(ctx, snap, shard)
		if err != nil {
			return engine.Stmt{}, err
		}
		it := s.intr.watchOnDone(ctx, shard, c)
		bs, err := engine.Prepare(ctx, c, sql, k)
		it.Stop()
		err = s.finish(shard, c, engine.Outcome{Status: s.status}, err)
		if err == nil || attempt > 0 || !errors.Is(err, engine.ErrBackendIO) || errors.Is(err, sqlerr.ErrFatal) ||
			ctx.Err() != nil || engine.DeadlinePassed(ctx) || !s.mayRetry() {
			return bs, err
		}
		s.r.log.Debug("preparing again on a fresh backend connection", "conn_id", s.info.ConnID, "shard", shard.Name, "err", err)
	}
}
