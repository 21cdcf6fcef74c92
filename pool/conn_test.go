package pool

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

func itoa(id uint32) string       { return strconv.FormatUint(uint64(id), 10) }
func contains(s, sub string) bool { return strings.Contains(s, sub) }
func wantSQLErr(t *testing.T, err error, code uint16, state string) {
	t.Helper()
	se, ok := sqlerr.As(err)
	if !ok {
		t.Fatalf("got %v (%T), want a *sqlerr.Error %d", err, err, code)
	}
	if se.Code != code || se.State != state {
		t.Fatalf("got %d (%s) %q, want %d (%s)", se.Code, se.State, se.Message, code, state)
	}
}

func testResetDirty(t *testing.T, e *env) {
	p, _ := e.newPool(t, func(o *Options) { o.MaxOpen = 1 })
	c := acquire(t, p)
	id := c.ID()
	exec(t, c, "SET @x = 42")
	exec(t, c, "CREATE TEMPORARY TABLE db1.tmp_reset (a INT)")
	exec(t, c, "USE db1")
	st := c.State()
	st.SetDB("db1")
	st.SetVars(map[string]string{"sql_mode": "'ANSI'"})
	st.PutStmt("SELECT 1", wire.Stmt{ID: 1000})
	if v := queryValue(t, c, "SELECT @x"); v != "42" {
		t.Fatalf("@x = %s before the reset", v)
	}
	c.State().MarkDirty()
	p.Release(c)

	c = acquire(t, p)
	defer p.Release(c)
	if c.ID() != id {
		t.Fatalf("got connection %d, want the reset %d", c.ID(), id)
	}
	if st := c.State(); st.Dirty() || st.DB() != "db1" || len(st.Vars()) != 0 || st.StmtCount() != 0 {
		t.Fatalf("bookkeeping not cleared: dirty %v, db %q, vars %v, stmts %d", st.Dirty(), st.DB(), st.Vars(), st.StmtCount())
	}
	if v := queryValue(t, c, "SELECT @x"); v != "NULL" {
		t.Fatalf("@x = %s after the reset, want NULL", v)
	}
	_, err := c.Exec(t.Context(), "SELECT * FROM db1.tmp_reset")
	wantSQLErr(t, err, 1146, "42S02")
	if s := p.Stats(); s.Resets != 1 || s.ResetErrors != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

// testResetSessionDefaults pins what COM_RESET_CONNECTION restores on MariaDB 10.11: the
// character set (to the pool's collation) and autocommit, but not the default database,
// which stays.
func testResetSessionDefaults(t *testing.T, e *env) {
	p, _ := e.newPool(t, nil)
	c := acquire(t, p)
	defer p.Release(c)
	session := func() string {
		return strings.Join([]string{
			queryValue(t, c, "SELECT IFNULL(DATABASE(), 'NULL')"),
			queryValue(t, c, "SELECT @@character_set_client"),
			queryValue(t, c, "SELECT @@collation_connection"),
			queryValue(t, c, "SELECT @@autocommit"),
		}, " ")
	}
	initial := session()
	if want := "NULL utf8mb4 utf8mb4_general_ci 1"; initial != want {
		t.Fatalf("fresh session: %s, want %s", initial, want)
	}
	exec(t, c, "USE db1")
	c.State().SetDB("db1")
	exec(t, c, "SET NAMES latin1")
	exec(t, c, "SET autocommit = 0")
	if got, want := session(), "db1 latin1 latin1_swedish_ci 0"; got != want {
		t.Fatalf("changed session: %s, want %s", got, want)
	}
	if err := c.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := session(), "db1 utf8mb4 utf8mb4_general_ci 1"; got != want {
		t.Fatalf("after COM_RESET_CONNECTION: %s, want %s", got, want)
	}
	if c.State().DB() != "db1" {
		t.Fatalf("DB() = %q after the reset, want db1 (as on the server)", c.State().DB())
	}
}

func testReleasedInTransaction(t *testing.T, e *env) {
	e.exec(t, "CREATE TABLE db1.tx_t (a INT PRIMARY KEY) ENGINE=InnoDB")
	p, _ := e.newPool(t, func(o *Options) { o.MaxOpen = 1 })
	c := acquire(t, p)
	id := c.ID()
	exec(t, c, "BEGIN")
	exec(t, c, "INSERT INTO db1.tx_t VALUES (1)")
	if !c.State().InTransaction() {
		t.Fatalf("status 0x%04x does not say in transaction", c.State().Status())
	}
	p.Release(c) // neither dirty nor broken: the status alone triggers the reset

	var n int
	if err := e.root.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM db1.tx_t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d rows visible after releasing an open transaction, want 0", n)
	}
	c = acquire(t, p)
	defer p.Release(c)
	if c.ID() != id || c.State().InTransaction() {
		t.Fatalf("got connection %d (in transaction %v), want %d reset", c.ID(), c.State().InTransaction(), id)
	}
	if v := queryValue(t, c, "SELECT COUNT(*) FROM db1.tx_t"); v != "0" {
		t.Fatalf("the connection itself sees %s rows", v)
	}
	if s := p.Stats(); s.Resets != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

func testExecResults(t *testing.T, e *env) {
	e.exec(t, "CREATE TABLE db1.ex_t (a INT AUTO_INCREMENT PRIMARY KEY, b INT)",
		"CREATE PROCEDURE db1.two_results() BEGIN SELECT 1; SELECT 2, 3; END")
	p, _ := e.newPool(t, nil)
	c := acquire(t, p)
	defer p.Release(c)

	ok := exec(t, c, "INSERT INTO db1.ex_t (b) VALUES (1), (2), (3)")
	if ok.AffectedRows != 3 || ok.LastInsertID != 1 {
		t.Fatalf("INSERT: %+v", ok)
	}
	ok = exec(t, c, "SELECT * FROM db1.ex_t")
	if ok.Status&wire.StatusAutocommit == 0 || ok.Status&wire.StatusMoreResults != 0 {
		t.Fatalf("SELECT: %+v", ok)
	}
	if ok = exec(t, c, "SELECT 1/0"); ok.Warnings != 1 {
		t.Fatalf("SELECT 1/0: %+v, want 1 warning", ok)
	}
	// Two result sets and the CALL's own OK (needs CLIENT_MULTI_RESULTS).
	if ok = exec(t, c, "CALL db1.two_results()"); ok.Status&wire.StatusMoreResults != 0 {
		t.Fatalf("CALL: %+v", ok)
	}
	// A row larger than the 64 KiB buffers.
	exec(t, c, "SELECT REPEAT('x', 1000000)")
	if v := queryValue(t, c, "SELECT 7"); v != "7" {
		t.Fatalf("connection out of sync after results: %s", v)
	}
}

func testExecErrors(t *testing.T, e *env) {
	p, _ := e.newPool(t, nil)
	c := acquire(t, p)
	defer p.Release(c)
	_, err := c.Exec(t.Context(), "SELEC 1")
	wantSQLErr(t, err, 1064, "42000")
	if !contains(err.Error(), e.srv.Addr()) {
		t.Errorf("error %q does not name the backend", err)
	}
	_, err = c.Exec(t.Context(), "SELECT * FROM db1.no_such_table")
	wantSQLErr(t, err, 1146, "42S02")
	if c.State().Broken() {
		t.Fatal("a backend error marked the connection broken")
	}
	exec(t, c, "SELECT 1")
}

func testExecContext(t *testing.T, e *env) {
	p, _ := e.newPool(t, nil)
	c := acquire(t, p)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Exec(ctx, "SELECT SLEEP(5)")
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Exec: %v, want context.DeadlineExceeded", err)
	}
	if elapsed > time.Second {
		t.Fatalf("Exec returned after %s", elapsed)
	}
	if !c.State().Broken() {
		t.Fatal("connection not marked broken after an interrupted query")
	}
	if _, err := c.Exec(t.Context(), "SELECT 1"); !errors.Is(err, ErrBroken) {
		t.Fatalf("Exec on a broken connection: %v", err)
	}
	id := c.ID()
	p.Release(c)
	if s := p.Stats(); s.ClosedBroken != 1 || s.Open != 0 {
		t.Fatalf("stats: %+v", s)
	}
	// The statement still runs on the server: stop it.
	if err := p.KillQuery(t.Context(), id); err != nil {
		t.Logf("KillQuery: %v", err) // the server may have noticed the close already
	}
}

func testKillQuery(t *testing.T, e *env) {
	p, _ := e.newPool(t, nil)
	c := acquire(t, p)
	defer p.Release(c)
	type result struct {
		err     error
		elapsed time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		_, err := c.Exec(context.Background(), "SELECT SLEEP(10)")
		done <- result{err, time.Since(start)}
	}()
	eventually(t, 5*time.Second, "the SLEEP to run", func() bool {
		var n int
		err := e.root.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM information_schema.PROCESSLIST "+
			"WHERE ID = ? AND INFO LIKE 'SELECT SLEEP%'", c.ID()).Scan(&n)
		return err == nil && n == 1
	})
	dials := p.Stats().Dials
	if err := p.KillQuery(t.Context(), c.ID()); err != nil {
		t.Fatalf("KillQuery: %v", err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the killed query did not return")
	}
	// MariaDB ends a killed SLEEP() with its result 1, other statements with error 1317.
	if se, ok := sqlerr.As(r.err); r.err != nil && (!ok || se.Code != sqlerr.ErQueryInterrupted) {
		t.Fatalf("killed Exec: %v", r.err)
	}
	if r.elapsed > 5*time.Second {
		t.Fatalf("killed query returned after %s", r.elapsed)
	}
	if s := p.Stats(); s.Dials != dials || s.Open != 1 {
		t.Fatalf("KillQuery used the pool: %+v", s)
	}
	exec(t, c, "SELECT 1") // the connection itself survives KILL QUERY
	err := p.KillQuery(t.Context(), 1<<31)
	wantSQLErr(t, err, 1094, "HY000")
}
