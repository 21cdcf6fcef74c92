package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// MySQL errors the transaction tests expect (router/txn recognises them).
const (
	erLockDeadlock      uint16 = 1213 // ER_LOCK_DEADLOCK
	erSavepointNotExist uint16 = 1305 // ER_SP_DOES_NOT_EXIST
)

// TestSessionAutocommitOffPinsOnlyInTransaction: autocommit=0 is replayed like any
// variable; a connection is kept only while the backend says a transaction is open.
func TestSessionAutocommitOffPinsOnlyInTransaction(t *testing.T) {
	be := newFakeBackend()
	be.values["autocommit"] = "0"
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "SET autocommit = 0", &w)
	if len(s.pinned) != 0 || s.status&wire.StatusAutocommit != 0 {
		t.Fatalf("after SET autocommit = 0: %d pinned, status %#x", len(s.pinned), s.status)
	}
	exec(t, s, "SELECT 1", &w) // no table: no transaction
	if len(s.pinned) != 0 {
		t.Fatalf("SELECT 1 pinned %d connections", len(s.pinned))
	}
	exec(t, s, "UPDATE shop.t SET a = 1", &w)
	exec(t, s, "SELECT * FROM blog.t", &w) // joins the open transaction
	if len(s.pinned) != 2 || s.status&wire.StatusInTrans == 0 {
		t.Fatalf("in a transaction: %d pinned, status %#x", len(s.pinned), s.status)
	}
	be.takeLog()
	w.reset()
	exec(t, s, "COMMIT", &w)
	wantLog(t, be, "s_blog#2: COMMIT", "s_shop#1: COMMIT")
	if len(s.pinned) != 0 {
		t.Errorf("%d connections pinned after COMMIT", len(s.pinned))
	}
	if oks := w.oks(); len(oks) != 1 || oks[0].Status&(wire.StatusInTrans|wire.StatusAutocommit) != 0 {
		t.Errorf("COMMIT answered %+v, want neither in transaction nor autocommit", oks)
	}
	// The next transaction may write elsewhere: the last one's writer is forgotten.
	exec(t, s, "UPDATE blog.t SET a = 2", &w)
	exec(t, s, "ROLLBACK", &w)
	if len(s.pinned) != 0 {
		t.Errorf("%d connections pinned after ROLLBACK", len(s.pinned))
	}
}

// TestSessionSavepointsJoin: a shard that joins after savepoints were taken creates them,
// so ROLLBACK TO and RELEASE reach every shard; unknown names get 1305 from the proxy.
func TestSessionSavepointsJoin(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "BEGIN", &w)
	exec(t, s, "SAVEPOINT a", &w)
	exec(t, s, "UPDATE shop.t SET a = 1", &w)
	exec(t, s, "SAVEPOINT b", &w)
	exec(t, s, "SELECT * FROM blog.t", &w)
	wantLog(t, be,
		"s_shop#1: BEGIN", "s_shop#1: SAVEPOINT a", "s_shop#1: UPDATE `shop_0`.`t` SET `a`=1", "s_shop#1: SAVEPOINT b",
		"s_blog#2: BEGIN", "s_blog#2: SAVEPOINT `a`", "s_blog#2: SAVEPOINT `b`", "s_blog#2: SELECT * FROM `blog_p`.`t`")
	exec(t, s, "ROLLBACK TO SAVEPOINT a", &w)
	wantLog(t, be, "s_blog#2: ROLLBACK TO SAVEPOINT a", "s_shop#1: ROLLBACK TO SAVEPOINT a")
	// Rolled back past the write: another shard may write now.
	exec(t, s, "UPDATE blog.t SET a = 2", &w)
	be.takeLog()
	for _, q := range []string{"ROLLBACK TO SAVEPOINT b", "RELEASE SAVEPOINT nosuch"} {
		if err := s.Query(context.Background(), q, false, &w); sqlCode(err) != erSavepointNotExist {
			t.Errorf("%s: %v, want 1305", q, err)
		}
	}
	wantLog(t, be) // answered by the proxy
	exec(t, s, "RELEASE SAVEPOINT a", &w)
	if err := s.Query(context.Background(), "ROLLBACK TO a", false, &w); sqlCode(err) != erSavepointNotExist {
		t.Errorf("ROLLBACK TO a released savepoint: %v, want 1305", err)
	}
	exec(t, s, "COMMIT", &w)
	if len(s.pinned) != 0 || len(s.tx.Savepoints()) != 0 {
		t.Errorf("after COMMIT: %d pinned, savepoints %v", len(s.pinned), s.tx.Savepoints())
	}
	// Outside a transaction SAVEPOINT is ignored, as by MariaDB.
	be.takeLog()
	exec(t, s, "SAVEPOINT c", &w)
	if err := s.Query(context.Background(), "ROLLBACK TO c", false, &w); sqlCode(err) != erSavepointNotExist {
		t.Errorf("ROLLBACK TO a savepoint taken outside a transaction: %v, want 1305", err)
	}
	wantLog(t, be)
}

// TestSessionSavepointAutocommitOff: under autocommit=0 a savepoint taken before any
// statement is created on each connection as it joins, without BEGIN: as on MariaDB, a
// statement without tables leaves no transaction open (@@in_transaction 0).
func TestSessionSavepointAutocommitOff(t *testing.T) {
	be := newFakeBackend()
	be.values["autocommit"] = "0"
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "SET autocommit = 0", &w)
	be.takeLog()
	exec(t, s, "SAVEPOINT s", &w)
	wantLog(t, be)
	exec(t, s, "SELECT @@in_transaction", &w)
	wantLog(t, be, "s_shop#1: SAVEPOINT `s`", "s_shop#1: SELECT @@in_transaction")
	if s.status&wire.StatusInTrans != 0 || len(s.pinned) != 0 {
		t.Errorf("a statement without tables opened a transaction: status %#x, %d pinned", s.status, len(s.pinned))
	}
	exec(t, s, "INSERT INTO shop.t (a) VALUES (1)", &w)
	// The connection went back (reset: it held the savepoint) and came back.
	wantLog(t, be, "s_shop#1: SET SESSION autocommit = 0", "s_shop#1: SAVEPOINT `s`", "s_shop#1: INSERT INTO `shop_0`.`t` (`a`) VALUES (1)")
	exec(t, s, "ROLLBACK TO SAVEPOINT s", &w)
	exec(t, s, "COMMIT", &w)
	if len(s.pinned) != 0 || len(s.tx.Savepoints()) != 0 {
		t.Errorf("after COMMIT: %d pinned, savepoints %v", len(s.pinned), s.tx.Savepoints())
	}
}

// TestSessionDeadlockRollsBackEverywhere: a deadlock rolled the transaction back on one
// shard; the proxy rolls it back on the others.
func TestSessionDeadlockRollsBackEverywhere(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "BEGIN", &w)
	exec(t, s, "SELECT * FROM blog.t", &w)
	be.takeLog()
	err := s.Query(context.Background(), "UPDATE shop.deadlock SET a = 1", false, &w)
	if sqlCode(err) != erLockDeadlock {
		t.Fatalf("got %v, want the deadlock", err)
	}
	log := be.takeLog()
	slices.Sort(log)
	if want := []string{"s_blog#2: ROLLBACK", "s_shop#1: ROLLBACK", "s_shop#1: UPDATE `shop_0`.`deadlock` SET `a`=1"}; !slices.Equal(log, want) {
		t.Errorf("backend received %q, want %q", log, want)
	}
	if len(s.pinned) != 0 || s.status&wire.StatusInTrans != 0 {
		t.Errorf("after the deadlock: %d pinned, status %#x", len(s.pinned), s.status)
	}
}

// TestSessionImplicitCommitEverywhere: a statement that commits implicitly on one shard
// (SET autocommit = 1 under autocommit = 0) commits the transaction on every shard.
func TestSessionImplicitCommitEverywhere(t *testing.T) {
	be := newFakeBackend()
	be.values["autocommit"] = "0"
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "SET autocommit = 0", &w)
	exec(t, s, "UPDATE blog.t SET a = 1", &w)
	exec(t, s, "SELECT * FROM shop.t", &w)
	be.takeLog()
	be.values["autocommit"] = "1"
	exec(t, s, "SET autocommit = 1", &w)
	log := be.takeLog()
	if !slices.Contains(log, "s_blog#2: COMMIT") {
		t.Errorf("backend received %q, want a COMMIT on s_blog", log)
	}
	if len(s.pinned) != 0 || s.status&wire.StatusInTrans != 0 {
		t.Errorf("after the implicit commit: %d pinned, status %#x", len(s.pinned), s.status)
	}
}

// TestSessionScatterErrorKeepsTransaction: a shard's error in a scatter SELECT inside a
// transaction answers that error; the other shards are drained, every connection and the
// transaction stay.
func TestSessionScatterErrorKeepsTransaction(t *testing.T) {
	be := newFakeBackend()
	be.failSelects = map[string]bool{"s1": true}
	s := fakeSession(t, shardedRouter(t, be), "app", 1)
	if err := s.UseDB(context.Background(), "shop"); err != nil {
		t.Fatal(err)
	}
	var w clientRecorder
	exec(t, s, "BEGIN", &w)
	err := s.Query(context.Background(), "SELECT * FROM orders", false, &w)
	if sqlCode(err) != 1054 {
		t.Fatalf("scatter error: %v, want the shard's 1054", err)
	}
	if len(s.pinned) != 4 {
		t.Errorf("%d connections pinned after the error, want all 4", len(s.pinned))
	}
	for name, c := range s.pinned {
		if c.State().Broken() {
			t.Errorf("connection of %s closed", name)
		}
	}
	if len(be.kills) != 0 {
		t.Errorf("queries killed: %v", be.kills)
	}
	be.failSelects = nil
	exec(t, s, "SELECT * FROM orders", &w)
	exec(t, s, "COMMIT", &w)
	if len(s.pinned) != 0 {
		t.Errorf("%d connections pinned after COMMIT", len(s.pinned))
	}
}

// TestFoundRows: what a client with CLIENT_FOUND_ROWS gets, from the OK packet of a
// connection without the flag.
func TestFoundRows(t *testing.T) {
	cases := []struct {
		kind     rowsKind
		affected uint64
		info     string
		want     uint64
	}{
		{rowsUpdate, 0, "Rows matched: 3  Changed: 0  Warnings: 0", 3},
		{rowsUpdate, 2, "Rows matched: 5  Changed: 2  Warnings: 1", 5},
		{rowsUpdate, 2, "", 2}, // no info: as reported
		{rowsUpsert, 0, "", 1}, // one row set to its own values
		{rowsUpsert, 1, "", 1}, // inserted
		{rowsUpsert, 2, "", 2}, // updated
		{rowsUpsert, 3, "Records: 3  Duplicates: 1  Warnings: 0", 4},
		{rowsUpsert, 2, "Records: 3  Duplicates: 0  Warnings: 0", 3},
		{rowsPlain, 0, "Records: 3  Duplicates: 1  Warnings: 0", 0},
		{rowsPlain, 7, "", 7},
	}
	for _, c := range cases {
		if got := foundRows(c.kind, wire.OK{AffectedRows: c.affected, Info: c.info}); got != c.want {
			t.Errorf("foundRows(%d, %d, %q) = %d, want %d", c.kind, c.affected, c.info, got, c.want)
		}
	}
	for sql, want := range map[string]rowsKind{
		"UPDATE t SET a = 1":                                          rowsUpdate,
		"UPDATE t JOIN u ON t.id = u.id SET t.a = 1":                  rowsUpdate,
		"INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 1":      rowsUpsert,
		"INSERT IGNORE INTO t VALUES (1) ON DUPLICATE KEY UPDATE a=1": rowsPlain,
		"INSERT INTO t VALUES (1)":                                    rowsPlain,
		"REPLACE INTO t VALUES (1)":                                   rowsPlain,
		"DELETE FROM t":                                               rowsPlain,
	} {
		s, _ := newTestSession(t, plantest.PassthroughConfig(), "app", "shop")
		st, err := s.parseOne(sql)
		if err != nil {
			t.Fatal(err)
		}
		if got := rowsKindOf(st); got != want {
			t.Errorf("rowsKindOf(%q) = %d, want %d", sql, got, want)
		}
	}
}

// TestSessionPreparedTransactionControl: COMMIT and savepoints prepared in the binary
// protocol act on every shard of the transaction, as in text.
func TestSessionPreparedTransactionControl(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	ctx := context.Background()
	prep := func(sql string) *Stmt {
		t.Helper()
		st, err := s.Prepare(ctx, sql)
		if err != nil {
			t.Fatalf("prepare %s: %v", sql, err)
		}
		return st
	}
	begin, sp, rollbackTo, commit := prep("BEGIN"), prep("SAVEPOINT a"), prep("ROLLBACK TO SAVEPOINT a"), prep("COMMIT")
	wantLog(t, be) // nothing prepared on a backend
	run := func(st *Stmt) {
		t.Helper()
		if err := s.Execute(ctx, st, nil, &w); err != nil {
			t.Fatalf("execute %s: %v", st.orig, err)
		}
	}
	run(begin)
	exec(t, s, "UPDATE shop.t SET a = 1", &w)
	run(sp)
	exec(t, s, "SELECT * FROM blog.t", &w)
	run(rollbackTo)
	be.takeLog()
	run(commit)
	wantLog(t, be, "s_blog#2: COMMIT", "s_shop#1: COMMIT")
	if len(s.pinned) != 0 || len(s.tx.Savepoints()) != 0 {
		t.Errorf("after COMMIT: %d pinned, savepoints %v", len(s.pinned), s.tx.Savepoints())
	}
}

// TestSessionScatterDeadlock: a deadlock in a scatter query inside a transaction rolls the
// transaction back on every shard, those that joined in that very query included.
func TestSessionScatterDeadlock(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, shardedRouter(t, be), "app", 1)
	if err := s.UseDB(context.Background(), "shop"); err != nil {
		t.Fatal(err)
	}
	var w clientRecorder
	exec(t, s, "BEGIN", &w)
	err := s.Query(context.Background(), "SELECT * FROM orders WHERE deadlock = 1 FOR UPDATE", false, &w)
	if sqlCode(err) != erLockDeadlock {
		t.Fatalf("got %v, want the deadlock", err)
	}
	if len(s.pinned) != 0 || s.status&wire.StatusInTrans != 0 || s.txnOpen() {
		t.Errorf("after the deadlock: %d pinned, status %#x", len(s.pinned), s.status)
	}
	for _, l := range be.takeLog() {
		if strings.Contains(l, "ROLLBACK") {
			return
		}
	}
	t.Error("no ROLLBACK sent")
}

// TestSessionLostCommit: the COMMIT of a transaction over two shards reaches the shard it
// wrote, whose connection dies before answering: whether it committed is unknown, so the
// client connection is closed (never an OK, never a definite error). A lost COMMIT on a shard
// that only read changes nothing: the client gets its error and the connection goes on.
func TestSessionLostCommit(t *testing.T) {
	for _, tc := range []struct {
		name, lose string
		lost       bool
	}{
		{"WritingShard", "s_blog", true},
		{"ReadingShard", "s_shop", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newFakeBackend()
			be.lostCommits = map[string]bool{tc.lose: true}
			s := fakeSession(t, fakeRouter(t, be), "app", 1)
			var w clientRecorder
			exec(t, s, "BEGIN", &w)
			exec(t, s, "SELECT * FROM shop.t", &w)
			exec(t, s, "UPDATE blog.t SET a = 1", &w)
			err := s.Query(context.Background(), "COMMIT", false, &w)
			if err == nil {
				t.Fatal("COMMIT answered OK although a shard's connection died")
			}
			if lost := errors.Is(err, sqlerr.ErrLost); lost != tc.lost {
				t.Errorf("error %v: client connection closed = %v, want %v", err, lost, tc.lost)
			}
		})
	}
}

// TestSessionScatterDeadlockReleasesOnce: a scatter query inside a transaction deadlocks on
// one shard while a shard after it (in the order the scatter settles its shards) was in the
// transaction before the query. Rolling the transaction back everywhere releases that
// shard's connection; settling the shard afterwards must not release it a second time (the
// pool would hand it to another session while this one still holds it).
func TestSessionScatterDeadlockReleasesOnce(t *testing.T) {
	var onS2 int64
	for u := int64(1); onS2 == 0; u++ {
		if slot, _ := (rules.HashFunc{N: 4}).Slot(rules.IntValue(u)); slot == 2 {
			onS2 = u
		}
	}
	be := newFakeBackend()
	be.deadlockShards = map[string]bool{"s1": true}
	s := fakeSession(t, shardedRouter(t, be), "app", 1)
	if err := s.UseDB(context.Background(), "shop"); err != nil {
		t.Fatal(err)
	}
	var w clientRecorder
	exec(t, s, "BEGIN", &w)
	exec(t, s, fmt.Sprintf("UPDATE order_items SET qty = 1 WHERE user_id = %d", onS2), &w)
	err := s.Query(context.Background(), "SELECT * FROM orders FOR UPDATE", false, &w)
	if sqlCode(err) != erLockDeadlock {
		t.Fatalf("got %v, want the deadlock", err)
	}
	if be.doubleReleases != 0 {
		t.Errorf("%d connections released twice", be.doubleReleases)
	}
	if len(s.pinned) != 0 || s.txnOpen() {
		t.Errorf("after the deadlock: %d pinned", len(s.pinned))
	}
}

// TestSessionBeginCommitsEveryShard: BEGIN inside a transaction that spans shards commits
// it on each, the writing shard last (MariaDB's implicit commit), then begins the next one,
// which may write on another shard.
func TestSessionBeginCommitsEveryShard(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "BEGIN", &w)
	exec(t, s, "UPDATE shop.t SET a = 1", &w)
	exec(t, s, "SELECT * FROM blog.t", &w)
	be.takeLog()
	exec(t, s, "BEGIN", &w)
	wantLog(t, be, "s_blog#2: COMMIT", "s_shop#1: COMMIT", "s_shop#1: BEGIN")
	if len(s.pinned) != 1 || s.status&wire.StatusInTrans == 0 || len(s.tx.Writers()) != 0 {
		t.Fatalf("after BEGIN: %d pinned, status %#x, written %v", len(s.pinned), s.status, s.tx.Writers())
	}
	exec(t, s, "UPDATE blog.t SET a = 2", &w)
	exec(t, s, "COMMIT", &w)
	if len(s.pinned) != 0 || s.status&wire.StatusInTrans != 0 {
		t.Errorf("after COMMIT: %d pinned, status %#x", len(s.pinned), s.status)
	}
}

// TestSessionFailedWriteIsNotTheWriter: a write that fails changed nothing, so its shard
// does not become the transaction's writing shard; a failed write on the writing shard
// leaves it the writer.
func TestSessionFailedWriteIsNotTheWriter(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "BEGIN", &w)
	exec(t, s, "SELECT * FROM blog.t", &w)
	if err := s.Query(context.Background(), "UPDATE shop.fail SET a = 1", false, &w); sqlCode(err) != 1146 {
		t.Fatalf("UPDATE shop.fail: %v, want 1146", err)
	}
	exec(t, s, "UPDATE blog.t SET a = 2", &w) // the transaction's first write that succeeded
	if err := s.Query(context.Background(), "UPDATE blog.fail SET a = 3", false, &w); sqlCode(err) != 1146 {
		t.Fatalf("UPDATE blog.fail: %v, want 1146", err)
	}
	if err := s.Query(context.Background(), "UPDATE shop.t SET a = 4", false, &w); sqlCode(err) != 1235 {
		t.Fatalf("a write to a second shard: %v, want 1235", err)
	}
	if len(s.pinned) != 0 || s.status&wire.StatusInTrans != 0 || len(s.tx.Writers()) != 0 {
		t.Errorf("after the refusal: %d pinned, status %#x, written %v", len(s.pinned), s.status, s.tx.Writers())
	}
}

// TestSessionEndKeepsAutocommit: a SET autocommit = 0 run inside a transaction on one
// shard's connection reaches another pinned connection only at its next statement; a
// COMMIT answered last by that connection leaves the session's autocommit off, so the next
// multi-shard write is refused, not committed at once.
func TestSessionEndKeepsAutocommit(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "BEGIN", &w)
	exec(t, s, "UPDATE blog.t SET a = 1", &w) // blog writes: its COMMIT comes last
	be.values["autocommit"] = "0"
	exec(t, s, "SET autocommit = 0", &w) // on the default shard's pinned connection
	w.reset()
	exec(t, s, "COMMIT", &w)
	if oks := w.oks(); len(oks) != 1 || oks[0].Status&wire.StatusAutocommit != 0 || s.status&wire.StatusAutocommit != 0 {
		t.Fatalf("COMMIT answered %+v, session status %#x: want autocommit off", oks, s.status)
	}
	if !s.inTransaction() {
		t.Error("under autocommit = 0 the session is not in a transaction")
	}
}

// TestSessionChainForgetsTheWriter: COMMIT AND CHAIN and ROLLBACK AND CHAIN end the
// transaction that wrote; the one they begin may write on another shard.
func TestSessionChainForgetsTheWriter(t *testing.T) {
	for _, end := range []string{"COMMIT AND CHAIN", "ROLLBACK AND CHAIN"} {
		for _, read := range []string{"", "SELECT * FROM shop.t"} { // one or two shards pinned
			be := newFakeBackend()
			s := fakeSession(t, fakeRouter(t, be), "app", 1)
			var w clientRecorder
			exec(t, s, "BEGIN", &w)
			exec(t, s, "UPDATE blog.t SET a = 1", &w)
			if read != "" {
				exec(t, s, read, &w)
			}
			exec(t, s, end, &w)
			if err := s.Query(context.Background(), "UPDATE shop.t SET a = 2", false, &w); err != nil {
				t.Errorf("%s (%q read): a write on another shard: %v", end, read, err)
			}
		}
	}
}

// TestSessionFailedStatementBegins: under autocommit = 0 a statement that fails after
// opening its table has begun a transaction on its connection (the ERR packet does not say
// so); the session keeps that connection in the transaction, so a refusal or ROLLBACK ends
// it there too.
func TestSessionFailedStatementBegins(t *testing.T) {
	be := newFakeBackend()
	be.values["autocommit"] = "0"
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "SET autocommit = 0", &w)
	if err := s.Query(context.Background(), "INSERT INTO shop.dupkey (a) VALUES (1)", false, &w); sqlCode(err) != 1062 {
		t.Fatalf("INSERT: %v, want 1062", err)
	}
	if len(s.pinned) != 1 || s.status&wire.StatusInTrans == 0 {
		t.Fatalf("after the failed INSERT: %d pinned, status %#x; want its connection in the transaction", len(s.pinned), s.status)
	}
	be.takeLog()
	if err := s.Query(context.Background(), "UPDATE blog.t SET a = 1", false, &w); err != nil {
		t.Fatal(err) // the failed INSERT wrote nothing: blog may write
	}
	exec(t, s, "ROLLBACK", &w)
	log := be.takeLog()
	if !slices.Contains(log, "s_shop#1: ROLLBACK") {
		t.Errorf("backend received %q, want a ROLLBACK on s_shop", log)
	}
	if len(s.pinned) != 0 {
		t.Errorf("%d connections pinned after ROLLBACK", len(s.pinned))
	}
	// A statement failing before its table is open begins nothing.
	if err := s.Query(context.Background(), "UPDATE shop.fail SET a = 1", false, &w); sqlCode(err) != 1146 {
		t.Fatalf("UPDATE shop.fail: %v, want 1146", err)
	}
	if len(s.pinned) != 0 || s.status&wire.StatusInTrans != 0 {
		t.Errorf("after a statement that began nothing: %d pinned, status %#x", len(s.pinned), s.status)
	}
}
