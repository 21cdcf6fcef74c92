package txn

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// A transaction pins one backend connection per shard it touches, for as long as the
// backend says a transaction is open on it (SERVER_STATUS_IN_TRANS in its OK and EOF
// packets): autocommit=0 alone pins nothing, as MariaDB starts a transaction only at the
// first statement that needs one. Once a transaction is open, every connection the session
// uses joins it: it runs the statement that began the transaction (BEGIN when autocommit=0
// began it) and recreates the session's live savepoints, which on that shard name its empty
// state. Reads may touch any number of shards; writes may touch one: a write to a second
// shard would need an atomic multi-shard commit (XA), so it is refused and the whole
// transaction rolled back, leaving nothing half committed.

// MySQL errors the transaction logic recognises.
const (
	erLockDeadlock      uint16 = 1213 // ER_LOCK_DEADLOCK: the server rolled the transaction back
	erSavepointNotExist uint16 = 1305 // ER_SP_DOES_NOT_EXIST, "SAVEPOINT x does not exist"
)

// Txn is the bookkeeping of one session's transaction: the statement that began it, the
// shards it wrote and its live savepoints. The zero value is no transaction. It does no I/O
// except Join; it is used by its session's goroutine only.
type Txn struct {
	begin      string          // the statement that began the transaction ("" for BEGIN)
	written    map[string]bool // shards written in the transaction
	newWriter  string          // the shard the running write made the writer: forgotten if it fails
	savepoints []savepoint     // the live savepoints, oldest first
}

// savepoint is one live savepoint of the transaction: it exists on every connection in it.
type savepoint struct {
	name    string
	written []string // shards written before it (restored by ROLLBACK TO it)
}

// Begin records the statement that begins a new transaction (BEGIN, START TRANSACTION ...):
// the savepoints and writes of the one before are gone.
func (t *Txn) Begin(text string) {
	t.begin, t.savepoints = text, nil
	clear(t.written)
}

// Reset forgets everything (the session's COM_RESET_CONNECTION).
func (t *Txn) Reset() {
	t.begin, t.savepoints, t.newWriter = "", nil, ""
	clear(t.written)
}

// Ended forgets the bookkeeping of a transaction that is over on every connection. Under
// autocommit=0 (autocommit false) savepoints taken before any connection opened the
// transaction stay until a statement opens it (COMMIT and ROLLBACK drop them).
func (t *Txn) Ended(autocommit bool) {
	clear(t.written)
	t.begin = ""
	if autocommit {
		t.savepoints = nil
	}
}

// ForgetWrites forgets the shards written (the transaction AND CHAIN began has written
// nothing yet).
func (t *Txn) ForgetWrites() { clear(t.written) }

// DropSavepoints forgets every savepoint (COMMIT, ROLLBACK).
func (t *Txn) DropSavepoints() { t.savepoints = nil }

// Write enforces the one-writing-shard rule before a write runs on shard; inTxn says
// whether the session is in a transaction (else there is nothing to check). The first write
// makes its shard the writer only if it succeeds (Settled): a failed statement changed
// nothing, as MariaDB rolls a statement back whole. A refused write returns the error the
// client gets; the caller rolls the transaction back everywhere, as the error says.
func (t *Txn) Write(shard string, inTxn bool) error {
	t.newWriter = ""
	if !inTxn {
		return nil
	}
	if len(t.written) == 0 || t.written[shard] {
		if !t.written[shard] {
			t.newWriter = shard
		}
		if t.written == nil {
			t.written = map[string]bool{}
		}
		t.written[shard] = true
		return nil
	}
	other := slices.Sorted(maps.Keys(t.written))
	return sqlerr.NotSupported("a transaction writing to shard %s after shard %s (multi-shard transactions need XA); the transaction was rolled back",
		shard, strings.Join(other, ", "))
}

// Settled is called once a statement ran on shard: a failed write that made shard the
// writer changed nothing, so shard is not the writer after all.
func (t *Txn) Settled(shard string, failed bool) {
	if failed && t.newWriter == shard {
		delete(t.written, shard)
	}
	t.newWriter = ""
}

// Wrote reports whether the transaction wrote to shard.
func (t *Txn) Wrote(shard string) bool { return t.written[shard] }

// Writers returns the shards the transaction wrote, sorted.
func (t *Txn) Writers() []string { return slices.Sorted(maps.Keys(t.written)) }

// BeginText returns the statement that began the transaction, "" when none was recorded.
func (t *Txn) BeginText() string { return t.begin }

// Savepoints returns the names of the live savepoints, oldest first.
func (t *Txn) Savepoints() []string {
	var out []string
	for _, sp := range t.savepoints {
		out = append(out, sp.name)
	}
	return out
}

// CommitOrder returns the shards names in the order a COMMIT visits them: the writing shard
// last, so that a failure before it leaves nothing committed; by name otherwise.
func (t *Txn) CommitOrder(names []string) []string {
	return slices.SortedFunc(slices.Values(names), func(a, b string) int {
		wa, wb := t.written[a], t.written[b]
		switch {
		case wa == wb:
			return strings.Compare(a, b)
		case wa:
			return 1
		}
		return -1
	})
}

// NeedsJoin reports whether a connection with status st must join the transaction before
// it runs a statement: a transaction is open elsewhere (open), or autocommit=0 savepoints
// were taken before any connection opened one.
func (t *Txn) NeedsJoin(st uint16, open bool) bool {
	return needsJoin(st, open, len(t.savepoints))
}

func needsJoin(st uint16, open bool, savepoints int) bool {
	return st&wire.StatusInTrans == 0 && (open || savepoints > 0)
}

// Join starts the transaction on c when it is not yet in it and recreates the live
// savepoints there; open says whether the transaction is open on another connection.
func (t *Txn) Join(ctx context.Context, c engine.Conn, open bool) error {
	if !t.NeedsJoin(c.State().Status(), open) {
		return nil
	}
	stmts := joinStatements(t.begin, t.savepoints)
	if !open {
		// Savepoints taken under autocommit=0 before any statement opened the transaction:
		// MariaDB keeps them with no transaction open (@@in_transaction 0) until a statement
		// opens one, and so does c, without BEGIN. c may go back before that: the pool
		// resets it then, so that they do not outlive the session's use of it.
		stmts = stmts[1:]
		c.State().MarkDirty()
	}
	it := engine.Watch(ctx, c, nil)
	defer it.Stop()
	for _, q := range stmts {
		ok, err := c.Exec(ctx, q)
		if err != nil {
			c.State().MarkDirty() // half joined: the pool's reset rolls back
			return err
		}
		c.State().SetStatus(ok.Status)
	}
	return nil
}

// joinStatements are the statements that make a connection join a transaction begun by
// begin ("" when autocommit=0 began it) with the live savepoints sps.
func joinStatements(begin string, sps []savepoint) []string {
	if begin == "" {
		begin = "BEGIN"
	}
	out := []string{begin}
	for _, sp := range sps {
		out = append(out, "SAVEPOINT "+wire.QuoteIdent(sp.name))
	}
	return out
}

// Savepoint records SAVEPOINT name, run on every connection in the transaction (or, under
// autocommit=0 before any opened it, recorded only: connections create it as they join).
// An older savepoint of the same name is deleted; the new one is the most recent.
func (t *Txn) Savepoint(name string) {
	t.savepoints = pushSavepoint(t.savepoints, name, t.written)
}

// CheckSavepoint returns MariaDB's error when the transaction has no savepoint name.
func (t *Txn) CheckSavepoint(name string) error {
	if findSavepoint(t.savepoints, name) < 0 {
		return errNoSavepoint(name)
	}
	return nil
}

// ToSavepoint records ROLLBACK TO SAVEPOINT name (release false), which undoes the work
// every shard did since the savepoint (a shard that joined later created it when it
// joined) and forgets the writes made since, or RELEASE SAVEPOINT name. Both forget the
// later savepoints, RELEASE the savepoint itself too. It returns MariaDB's error when there
// is no such savepoint.
func (t *Txn) ToSavepoint(name string, release bool) error {
	i := findSavepoint(t.savepoints, name)
	if i < 0 {
		return errNoSavepoint(name)
	}
	sp := t.savepoints[i]
	if release {
		t.savepoints = t.savepoints[:i]
		return nil
	}
	t.savepoints = t.savepoints[:i+1]
	clear(t.written)
	for _, name := range sp.written {
		if t.written == nil {
			t.written = map[string]bool{}
		}
		t.written[name] = true
	}
	return nil
}

// errNoSavepoint is MariaDB's answer to a savepoint name the transaction does not have.
func errNoSavepoint(name string) error {
	return sqlerr.New(erSavepointNotExist, "SAVEPOINT %s does not exist", name)
}

// findSavepoint returns the index of the live savepoint name (compared without case, as
// MariaDB does), or -1.
func findSavepoint(sps []savepoint, name string) int {
	for i := len(sps) - 1; i >= 0; i-- {
		if strings.EqualFold(sps[i].name, name) {
			return i
		}
	}
	return -1
}

// pushSavepoint returns the stack after SAVEPOINT name: an older savepoint of the same name
// is deleted, the new one is the most recent.
func pushSavepoint(sps []savepoint, name string, written map[string]bool) []savepoint {
	if i := findSavepoint(sps, name); i >= 0 {
		sps = slices.Delete(slices.Clone(sps), i, i+1)
	}
	return append(sps, savepoint{name: name, written: slices.Sorted(maps.Keys(written))})
}

// Deadlock reports whether err is a deadlock, which rolled the transaction back on the
// shard that reported it.
func Deadlock(err error) bool {
	e, ok := sqlerr.As(err)
	return ok && e.Code == erLockDeadlock
}

// LostError is the error after which the client connection is closed: the backend
// connection of shard holding transaction or session state was lost.
func LostError(shard string, err error) error {
	return sqlerr.Lost(sqlerr.New(sqlerr.ErConnLost,
		"Lost connection to backend of shard %s with an open transaction or session state; the transaction was rolled back (%v)", shard, err))
}
