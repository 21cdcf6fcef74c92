package txn

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// The participants of a session's transaction are the backend connections the session
// keeps, by shard name; those whose last status says SERVER_STATUS_IN_TRANS are in it. The
// functions here end or steer the transaction on all of them; the session then gives back
// the connections that left it.

// CommitTimeout bounds the commit (or rollback) phase, which runs even when the client's
// statement is cancelled: once prepared, a write is finished rather than abandoned. It also
// bounds the rollback of a transaction a statement's failure ended.
const CommitTimeout = 30 * time.Second

// Answer is what the connections of a transaction answered a statement: the status flags
// of the last OK, when one answered OK.
type Answer struct {
	Status uint16
	OK     bool
}

// Open reports whether a transaction is open on any of conns.
func Open(conns map[string]engine.Conn) bool {
	for _, c := range conns {
		if c.State().InTransaction() {
			return true
		}
	}
	return false
}

// RollbackAll runs ROLLBACK on every connection of conns. A connection that fails it is
// marked dirty (the pool's reset rolls back what ROLLBACK could not) and counts as out of
// the transaction.
func RollbackAll(ctx context.Context, conns map[string]engine.Conn) Answer {
	var a Answer
	for _, c := range conns {
		it := engine.Watch(ctx, c, nil)
		ok, err := c.Exec(ctx, "ROLLBACK")
		it.Stop()
		if err != nil {
			c.State().MarkDirty()
			c.State().SetStatus(c.State().Status() &^ wire.StatusInTrans)
			continue
		}
		c.State().SetStatus(ok.Status)
		a = Answer{Status: ok.Status, OK: true}
	}
	return a
}

// EndAll sends text (COMMIT when commit is set, or ROLLBACK) to every connection of conns,
// the writing shard last (CommitOrder), so a failure before it leaves nothing committed. A
// connection that fails is marked dirty and counts as out of the transaction (the pool's
// reset ends it). A COMMIT the writing shard received but never answered (its connection
// died, or was cut when ctx ended) has an unknown outcome: the error then closes the client
// connection (sqlerr.Lost), as a lost COMMIT on one server would. Else the error is the
// first connection's that failed.
func (t *Txn) EndAll(ctx context.Context, conns map[string]engine.Conn, text string, commit bool) (Answer, error) {
	var a Answer
	var firstErr error
	for _, name := range t.CommitOrder(slices.Collect(maps.Keys(conns))) {
		c := conns[name]
		it := engine.Watch(ctx, c, nil)
		ok, err := c.Exec(ctx, text)
		if it.Stop() {
			err = ctx.Err()
		}
		if err != nil {
			if commit && t.written[name] && c.State().Broken() {
				firstErr = sqlerr.Lost(sqlerr.New(sqlerr.ErConnLost,
					"Lost connection to shard %s during COMMIT of a transaction that wrote there; it may or may not have committed (%v)", name, err))
			} else if firstErr == nil {
				firstErr = err
			}
			c.State().MarkDirty()
			c.State().SetStatus(c.State().Status() &^ wire.StatusInTrans)
			continue
		}
		c.State().SetStatus(ok.Status)
		a = Answer{Status: ok.Status, OK: true}
	}
	return a, firstErr
}

// SendAll runs a savepoint statement on every connection of conns in the transaction, by
// shard name. It stops at a lost connection (lost set, err a LostError): that loses the
// transaction, which the caller rolls back everywhere before closing the client connection,
// as for any statement. Else err is the first connection's error, if any.
func SendAll(ctx context.Context, conns map[string]engine.Conn, text string) (a Answer, lost bool, err error) {
	for _, name := range slices.Sorted(maps.Keys(conns)) {
		c := conns[name]
		if !c.State().InTransaction() {
			continue
		}
		it := engine.Watch(ctx, c, nil)
		ok, xerr := c.Exec(ctx, text)
		if it.Stop() && xerr == nil {
			xerr = ctx.Err()
		}
		if xerr == nil {
			c.State().SetStatus(ok.Status)
			a = Answer{Status: ok.Status, OK: true}
			continue
		}
		if c.State().Broken() {
			return a, true, LostError(name, xerr)
		}
		if err == nil {
			err = xerr
		}
	}
	return a, false, err
}

// FailedBegin notes the transaction a failed statement may have begun on c under
// autocommit = 0 (autocommit false): MariaDB begins it once the statement opened its tables
// (a duplicate key leaves it open, an unknown column does not), and an ERR packet carries
// no status, so c is asked; one round trip, only after an error on a connection not yet in
// a transaction. It runs even when ctx is cancelled, bounded by CommitTimeout.
func FailedBegin(ctx context.Context, c engine.Conn, autocommit bool) {
	if autocommit || c.State().InTransaction() || c.State().Broken() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CommitTimeout)
	defer cancel()
	rows, err := engine.QueryRows(ctx, c, "SELECT @@in_transaction")
	switch {
	case err != nil:
		c.State().MarkDirty() // unknown: the pool's reset rolls back whatever is open
	case len(rows) == 1 && len(rows[0]) == 1 && rows[0][0] != nil && *rows[0][0] == "1":
		c.State().SetStatus(c.State().Status() | wire.StatusInTrans)
	}
}
