package router

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// A transaction pins one backend connection per shard it touches. Reads may touch any
// number of shards; writes may touch one: a write to a second shard would need an atomic
// multi-shard commit (XA), so it is refused and the whole transaction rolled back, leaving
// nothing half committed.

// joinTransaction starts the session's transaction on a connection that is not yet in it.
func (s *Session) joinTransaction(ctx context.Context, c Conn) error {
	if s.status&wire.StatusInTrans == 0 || s.txnBegin == "" || c.Status()&wire.StatusInTrans != 0 {
		return nil // no explicit transaction, or already joined; autocommit=0 starts one implicitly
	}
	stop := watch(ctx, c)
	defer stop()
	ok, err := c.Exec(ctx, s.txnBegin)
	if err == nil {
		c.SetStatus(ok.Status)
	}
	return err
}

// checkWrite enforces the one-writing-shard rule before a write runs on shard inside a
// transaction. On refusal the transaction has been rolled back everywhere.
func (s *Session) checkWrite(ctx context.Context, shard *rules.Shard) error {
	if !s.inTransaction() {
		return nil
	}
	if len(s.written) == 0 || s.written[shard.Name] {
		s.written[shard.Name] = true
		return nil
	}
	other := slices.Sorted(maps.Keys(s.written))
	s.rollbackAll(ctx)
	return sqlerr.NotSupported("a transaction writing to shard %s after shard %s (multi-shard transactions need XA); the transaction was rolled back",
		shard.Name, strings.Join(other, ", "))
}

// rollbackAll rolls back every pinned connection and ends the transaction.
func (s *Session) rollbackAll(ctx context.Context) {
	for name, c := range s.pinned {
		stop := watch(ctx, c)
		ok, err := c.Exec(ctx, "ROLLBACK")
		stop()
		if err != nil {
			c.MarkDirty() // the pool's reset rolls back what ROLLBACK could not
		} else {
			c.SetStatus(ok.Status)
			s.status = ok.Status
		}
		if !s.sticky {
			delete(s.pinned, name)
			s.release(c)
		}
	}
	s.endedTransaction()
}

// endedTransaction forgets the transaction's bookkeeping once it is over.
func (s *Session) endedTransaction() {
	if !s.inTransaction() {
		clear(s.written)
		s.txnBegin = ""
	}
}

// endTransaction sends COMMIT or ROLLBACK (or a savepoint statement) to every pinned
// connection. The writing shard, if any, commits last, so a failure before it leaves
// nothing committed.
func (s *Session) endTransaction(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode, text string, more bool, w wire.PacketWriter) error {
	if len(s.pinned) <= 1 {
		return s.runOnDefault(ctx, snap, st, text, more, w)
	}
	names := slices.SortedFunc(maps.Keys(s.pinned), func(a, b string) int {
		wa, wb := s.written[a], s.written[b]
		switch {
		case wa == wb:
			return strings.Compare(a, b)
		case wa:
			return 1
		}
		return -1
	})
	var firstErr error
	for _, name := range names {
		c := s.pinned[name]
		stop := watch(ctx, c)
		ok, err := c.Exec(ctx, text)
		if stop() {
			err = ctx.Err()
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			c.MarkDirty()
			continue
		}
		c.SetStatus(ok.Status)
		s.status = ok.Status
	}
	s.endedTransaction()
	for name, c := range s.pinned {
		if !s.sticky && !s.inTransaction() {
			delete(s.pinned, name)
			s.release(c)
		}
	}
	if firstErr != nil {
		return firstErr
	}
	return s.writeOK(w, more)
}

// runOnDefault runs a statement through the normal single-shard path.
func (s *Session) runOnDefault(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode, text string, more bool, w wire.PacketWriter) error {
	p, err := s.plan(snap, st, text, nil)
	if err != nil {
		return err
	}
	if c, ok := s.onlyPinned(); ok {
		// The transaction lives on one shard: end it there, wherever the default shard is.
		return s.runOn(ctx, snap, c.shard, c.conn, p.sql, more, w)
	}
	return s.run(ctx, snap, p.shard, p.sql, more, w)
}

type pinnedConn struct {
	shard *rules.Shard
	conn  Conn
}

// onlyPinned returns the single pinned connection, if there is exactly one.
func (s *Session) onlyPinned() (pinnedConn, bool) {
	if len(s.pinned) != 1 {
		return pinnedConn{}, false
	}
	for name, c := range s.pinned {
		sh, ok := s.r.rules.Load().Shard(name)
		if !ok {
			return pinnedConn{}, false
		}
		return pinnedConn{shard: sh, conn: c}, true
	}
	return pinnedConn{}, false
}

// runOn runs sql on an already pinned connection of shard.
func (s *Session) runOn(ctx context.Context, snap *rules.Snapshot, shard *rules.Shard, c Conn, sql string, more bool, w wire.PacketWriter) error {
	out, err := s.relayOn(ctx, shard, c, comQuery, []byte(sql), more, w)
	s.record(ctx, c, out, err)
	return s.finish(shard, c, out, err)
}
