package router

import (
	"context"
	"fmt"
	"strings"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// fanOutDDL runs a DDL fan-out: its statements one copy at a time; a partial failure names
// the copies that changed and those that did not, so an operator can finish or undo it.
func (s *Session) fanOutDDL(ctx context.Context, snap *rules.Snapshot, d *plan.DDL, more bool, w wire.PacketWriter) error {
	if err := s.ddlInTxn(); err != nil {
		return err
	}
	var progress ddlProgress
	for _, c := range d.Copies {
		err := s.run(ctx, snap, c.Shard, c.SQL, false, engine.Discard{})
		if progress.add(c.Shard.Name+":"+c.Table, err) && ctx.Err() != nil {
			break
		}
	}
	if err := progress.err(); err != nil {
		return err
	}
	return s.writeOK(w, more)
}

// ddlInTxn refuses DDL on several shards inside a transaction.
func (s *Session) ddlInTxn() error {
	if s.txnOpen() || s.status&wire.StatusInTrans != 0 {
		// A session that only keeps its connections (user variables, LOCK TABLES) runs the
		// DDL on them, as one server would.
		return sqlerr.NotSupported("DDL on sharded or broadcast tables inside a transaction (it would commit the transaction on some shards only)")
	}
	return nil
}

// ddlProgress collects the outcome of one DDL statement run on several physical copies, one
// at a time, so that a partial failure names the copies that changed and those that did not.
type ddlProgress struct {
	done, failed []string
	firstErr     *sqlerr.Error
	differ       bool // the failures have different codes
}

// add records the outcome err of the statement on the copy where; it reports whether it
// failed.
func (d *ddlProgress) add(where string, err error) bool {
	if err == nil {
		d.done = append(d.done, where)
		return false
	}
	e, ok := sqlerr.As(err)
	if !ok {
		e = sqlerr.New(sqlerr.ErUnknownError, "%v", err)
	}
	if d.firstErr == nil {
		d.firstErr = e
	}
	d.differ = d.differ || e.Code != d.firstErr.Code
	d.failed = append(d.failed, fmt.Sprintf("%s (%d: %s)", where, e.Code, e.Message))
	return true
}

// err is nil when every copy succeeded, the copies' error when all failed alike (the table
// already exists, say), else an error naming where it succeeded and where it failed.
func (d *ddlProgress) err() error {
	switch {
	case d.firstErr == nil:
		return nil
	case len(d.done) == 0 && !d.differ:
		return d.firstErr
	}
	return &sqlerr.Error{Code: d.firstErr.Code, State: d.firstErr.State, Message: fmt.Sprintf(
		"DDL partially applied: succeeded on [%s]; failed on [%s]", strings.Join(d.done, ", "), strings.Join(d.failed, ", "))}
}
