package router

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Session tests against fakeBackend: the exact SQL each shard receives (STYLE rule 13).

// fakeRouter is a router over plantest.PassthroughConfig with be as its backend.
func fakeRouter(t *testing.T, be *fakeBackend) *Router {
	t.Helper()
	snap, err := rules.Build(plantest.PassthroughConfig())
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Rules: rules.NewStore(snap), Backend: be})
}

func fakeSession(t *testing.T, r *Router, user string, connID uint32) *Session {
	t.Helper()
	s, err := r.NewSession(context.Background(), SessionInfo{ConnID: connID, User: user, Collation: 45})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// exec runs one COM_QUERY and fails the test on an error.
func exec(t *testing.T, s *Session, sql string, w *clientRecorder) {
	t.Helper()
	if err := s.Query(context.Background(), sql, false, w); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func wantLog(t *testing.T, be *fakeBackend, want ...string) {
	t.Helper()
	if got := be.takeLog(); !slices.Equal(got, want) {
		t.Errorf("backend received\n%q\nwant\n%q", got, want)
	}
}

func TestNewSessionUnknownUser(t *testing.T) {
	r := fakeRouter(t, newFakeBackend())
	if _, err := r.NewSession(context.Background(), SessionInfo{User: "ghost"}); sqlCode(err) != sqlerr.ErAccessDenied {
		t.Errorf("NewSession(ghost) = %v, want 1045", err)
	}
}

func TestSessionSendsRewrittenSQL(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 42)
	var w clientRecorder
	exec(t, s, "SELECT * FROM shop.t", &w)
	exec(t, s, "SELECT CONNECTION_ID()", &w)
	exec(t, s, "DELETE FROM blog.posts WHERE id = 1", &w)
	wantLog(t, be,
		"s_shop#1: SELECT * FROM `shop_0`.`t`",
		"s_shop#1: SELECT 42 AS `CONNECTION_ID()`", // the released connection is reused
		"s_blog#2: DELETE FROM `blog_p`.`posts` WHERE `id`=1",
	)
	if be.idleCount("s_shop") != 1 || be.idleCount("s_blog") != 1 {
		t.Error("connections were not released after autocommit statements")
	}
	if len(w.Pkts) != 5+5+1 { // two one-row results, one OK
		t.Errorf("client got %d packets", len(w.Pkts))
	}
}

func TestSessionUseDB(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "USE shop", &w)
	wantLog(t, be) // USE is the proxy's: nothing is sent
	if oks := w.oks(); len(oks) != 1 || oks[0].Status != wire.StatusAutocommit {
		t.Errorf("USE answered %+v", oks)
	}
	exec(t, s, "SELECT * FROM t", &w)
	exec(t, s, "SELECT * FROM t", &w)
	wantLog(t, be, "s_shop#1: USE shop_0", "s_shop#1: SELECT * FROM t", "s_shop#1: SELECT * FROM t")
	if err := s.UseDB(context.Background(), "nope"); sqlCode(err) != sqlerr.ErBadDB {
		t.Errorf("COM_INIT_DB nope = %v, want 1049", err)
	}
	if err := s.Query(context.Background(), "USE mysql", false, &w); sqlCode(err) != sqlerr.ErNotSupportedYet {
		t.Errorf("USE mysql = %v, want 1235", err)
	}
	blogger := fakeSession(t, fakeRouter(t, be), "blogger", 2)
	if err := blogger.UseDB(context.Background(), "shop"); sqlCode(err) != sqlerr.ErDBAccessDenied {
		t.Errorf("blogger USE shop = %v, want 1044", err)
	}
}

// TestSessionUserVariablePins: a user variable lives in one backend session, so the
// connection that set it stays with the client.
func TestSessionUserVariablePins(t *testing.T) {
	be := newFakeBackend()
	r := fakeRouter(t, be)
	a := fakeSession(t, r, "app", 1)
	b := fakeSession(t, r, "app", 2)
	var w clientRecorder
	exec(t, a, "SET @x = 1", &w)
	exec(t, b, "SELECT 1", &w) // cannot get a's connection
	exec(t, a, "SELECT @x", &w)
	wantLog(t, be, "s_shop#1: SET @x = 1", "s_shop#2: SELECT 1", "s_shop#1: SELECT @x")
	if !a.sticky {
		t.Error("SET @x did not make the session sticky")
	}
	a.Close()
	if c := be.idle["s_shop"]; len(c) != 2 {
		t.Errorf("%d idle connections after Close, want 2", len(c))
	}
}

func TestSessionStickyStatements(t *testing.T) {
	for _, sql := range []string{
		"SELECT GET_LOCK('a', 1)", "SELECT @x := 1", "PREPARE p FROM 'SELECT 1'",
		"CREATE TEMPORARY TABLE shop.tmp (a INT)", "LOCK TABLES shop.t READ", "SET @@session.tx_isolation_one_shot = 1",
	} {
		t.Run(sql, func(t *testing.T) {
			be := newFakeBackend()
			s := fakeSession(t, fakeRouter(t, be), "app", 1)
			_ = s.Query(context.Background(), sql, false, &clientRecorder{})
			if !s.sticky {
				t.Errorf("%s did not pin the session", sql)
			}
		})
	}
}

// TestSessionSetNamesReplay: session variables are applied where they are set, read back,
// and replayed on every other pooled connection the session uses; a connection left with
// another session's variables is brought back to the baseline.
func TestSessionSetNamesReplay(t *testing.T) {
	be := newFakeBackend()
	r := fakeRouter(t, be)
	a := fakeSession(t, r, "app", 1)
	b := fakeSession(t, r, "app", 2)
	var w clientRecorder
	be.values["character_set_client"] = "latin1"
	be.values["character_set_connection"] = "latin1"
	be.values["character_set_results"] = "latin1"
	be.values["collation_connection"] = "latin1_swedish_ci"
	exec(t, a, "SET NAMES latin1", &w)
	wantLog(t, be,
		"s_shop#1: SET NAMES latin1",
		"s_shop#1: SELECT @@session.character_set_client, @@session.character_set_connection, @@session.character_set_results, @@session.collation_connection",
	)
	// b gets connection 1, which holds a's character set: back to the baseline first.
	exec(t, b, "SELECT 2", &w)
	wantLog(t, be,
		"s_shop#1: SET SESSION character_set_client = 'utf8mb4', character_set_connection = 'utf8mb4', character_set_results = 'utf8mb4', collation_connection = 'utf8mb4_general_ci'",
		"s_shop#1: SELECT 2",
	)
	// a on another shard: a fresh connection gets a's variables, character sets first.
	exec(t, a, "SELECT * FROM blog.t", &w)
	wantLog(t, be,
		"s_blog#2: SET SESSION character_set_client = 'latin1', character_set_connection = 'latin1', character_set_results = 'latin1', collation_connection = 'latin1_swedish_ci'",
		"s_blog#2: SELECT * FROM `blog_p`.`t`",
	)
	exec(t, a, "SELECT * FROM blog.t", &w) // the connection now matches: nothing to replay
	wantLog(t, be, "s_blog#2: SELECT * FROM `blog_p`.`t`")
	if a.sticky {
		t.Error("SET NAMES made the session sticky; it is replayable")
	}
	// COM_RESET_CONNECTION keeps the character set (MySQL does).
	if err := a.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	exec(t, a, "SELECT * FROM blog.t", &w)
	wantLog(t, be, "s_blog#2: SELECT * FROM `blog_p`.`t`")
}

func TestSessionSetVariables(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	be.values["tx_isolation"] = "READ-COMMITTED"
	be.values["sql_mode"] = "ANSI"
	exec(t, s, "SET SESSION transaction_isolation = 'READ-COMMITTED', sql_mode = 'ANSI'", &w)
	wantLog(t, be,
		"s_shop#1: SET @@SESSION.`tx_isolation`='READ-COMMITTED', @@SESSION.`sql_mode`='ANSI'",
		"s_shop#1: SELECT @@session.sql_mode, @@session.tx_isolation",
	)
	if s.vars.get("tx_isolation") != "'READ-COMMITTED'" || s.vars.get("sql_mode") != "'ANSI'" {
		t.Errorf("session variables %v", s.vars.values)
	}
	for _, sql := range []string{"SET GLOBAL max_connections = 10", "KILL 5", "KILL QUERY 5"} {
		if err := s.Query(context.Background(), sql, false, &w); sqlCode(err) != sqlerr.ErNotSupportedYet {
			t.Errorf("%s = %v, want 1235", sql, err)
		}
	}
	wantLog(t, be)
}

func TestSessionShowDatabases(t *testing.T) {
	be := newFakeBackend()
	r := fakeRouter(t, be)
	cases := []struct {
		user, sql string
		title     string
		want      []string
	}{
		{"app", "SHOW DATABASES", "Database", []string{"information_schema", "shop", "blog", "crm"}},
		{"shopper", "SHOW DATABASES", "Database", []string{"information_schema", "shop", "crm"}},
		{"blogger", "SHOW SCHEMAS", "Database", []string{"information_schema", "blog"}},
		{"app", "SHOW DATABASES LIKE 'c%'", "Database (c%)", []string{"crm"}},
		{"app", "SHOW DATABASES LIKE 'SH_P'", "Database (SH_P)", []string{"shop"}},
		{"app", "SHOW DATABASES LIKE 'none'", "Database (none)", nil},
	}
	for _, c := range cases {
		t.Run(c.user+" "+c.sql, func(t *testing.T) {
			s := fakeSession(t, r, c.user, 1)
			var w clientRecorder
			exec(t, s, c.sql, &w)
			if len(w.Pkts) != 4+len(c.want) {
				t.Fatalf("%d packets", len(w.Pkts))
			}
			if name, _ := wire.ParseColumnName(w.Pkts[1]); name != c.title {
				t.Errorf("column %q, want %q", name, c.title)
			}
			var got []string
			for _, row := range w.Pkts[3 : 3+len(c.want)] {
				v, _, _ := wire.LenencString(row)
				got = append(got, string(v))
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("databases %q, want %q", got, c.want)
			}
		})
	}
	wantLog(t, be)
}

func TestSessionMultiStatements(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	if err := s.Query(context.Background(), "SELECT 1; DELETE FROM shop.t", false, &w); sqlCode(err) != sqlerr.ErParse {
		t.Errorf("multi-statements disabled: %v, want 1064", err)
	}
	wantLog(t, be)
	if err := s.Query(context.Background(), "SELECT 1; USE shop; DELETE FROM t;", true, &w); err != nil {
		t.Fatal(err)
	}
	wantLog(t, be, "s_shop#1: SELECT 1", "s_shop#1: USE shop_0", "s_shop#1: DELETE FROM t")
	// Every result but the last announces more results.
	var flags []bool
	for _, p := range w.Pkts {
		if st, ok := wire.Status(p); ok && (wire.IsEOF(p) || p[0] == wire.OKHeader) {
			flags = append(flags, st&wire.StatusMoreResults != 0)
		}
	}
	// SELECT: EOF after columns, EOF after rows; USE: OK; DELETE: OK.
	if want := []bool{false, true, true, false}; !slices.Equal(flags, want) {
		t.Errorf("MORE_RESULTS flags %v, want %v", flags, want)
	}
	if err := s.Query(context.Background(), "", false, &w); sqlCode(err) != sqlerr.ErEmptyQuery {
		t.Errorf("empty query: %v, want 1065", err)
	}
	if err := s.Query(context.Background(), "SELECT 1; SELECT * FROM nope.t", true, &w); sqlCode(err) != sqlerr.ErBadDB {
		t.Errorf("second statement failing: %v, want 1049", err)
	}
	wantLog(t, be, "s_shop#1: SELECT 1")
}

func TestSessionLastInsertID(t *testing.T) {
	be := newFakeBackend()
	be.lastInsertID = 77
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "INSERT INTO shop.t (a) VALUES (1)", &w)
	be.lastInsertID = 0
	exec(t, s, "UPDATE shop.t SET a = 2", &w) // an OK without an id keeps the last one
	exec(t, s, "SELECT LAST_INSERT_ID()", &w)
	wantLog(t, be,
		"s_shop#1: INSERT INTO `shop_0`.`t` (`a`) VALUES (1)",
		"s_shop#1: UPDATE `shop_0`.`t` SET `a`=2",
		"s_shop#1: SELECT IFNULL(CAST(77 AS UNSIGNED), LAST_INSERT_ID()) AS `LAST_INSERT_ID()`",
	)
}

func TestSessionBackendError(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	err := s.Query(context.Background(), "SELECT * FROM shop.fail", false, &w)
	e, ok := sqlerr.As(err)
	if !ok || e.Code != 1146 || e.State != "42S02" {
		t.Fatalf("err = %v, want the backend's 1146 (42S02)", err)
	}
	c := be.idle["s_shop"]
	if len(c) != 1 || c[0].st.Broken() {
		t.Error("a backend ERR must leave the connection usable and pooled")
	}
	blogger := fakeSession(t, fakeRouter(t, be), "blogger", 2)
	if err := blogger.Query(context.Background(), "SELECT * FROM shop.t", false, &w); sqlCode(err) != sqlerr.ErDBAccessDenied {
		t.Errorf("forbidden database: %v, want 1044", err)
	}
	wantLog(t, be, "s_shop#1: SELECT * FROM `shop_0`.`fail`")
}

// TestSessionTransactionOneWriter: a transaction may read several shards but write one; a
// write to a second shard is refused and the whole transaction rolled back.
func TestSessionTransactionOneWriter(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "BEGIN", &w)
	exec(t, s, "INSERT INTO shop.t (a) VALUES (1)", &w)
	exec(t, s, "SELECT * FROM blog.t", &w) // a read elsewhere joins the transaction there
	if s.status&wire.StatusInTrans == 0 {
		t.Fatalf("status %#x: not in a transaction", s.status)
	}
	err := s.Query(context.Background(), "UPDATE blog.t SET a = 1", false, &w)
	if sqlCode(err) != sqlerr.ErNotSupportedYet {
		t.Fatalf("second writer: %v, want 1235", err)
	}
	log := be.takeLog()
	want := []string{
		"s_shop#1: BEGIN",
		"s_shop#1: INSERT INTO `shop_0`.`t` (`a`) VALUES (1)",
		"s_blog#2: BEGIN",
		"s_blog#2: SELECT * FROM `blog_p`.`t`",
	}
	if !slices.Equal(log[:4], want) {
		t.Fatalf("backend received %q, want first %q", log, want)
	}
	rollbacks := log[4:]
	slices.Sort(rollbacks)
	if !slices.Equal(rollbacks, []string{"s_blog#2: ROLLBACK", "s_shop#1: ROLLBACK"}) {
		t.Errorf("after the refusal %q, want a ROLLBACK on both connections", rollbacks)
	}
	if s.inTransaction() || len(s.pinned) != 0 {
		t.Errorf("after the refusal: status %#x, %d pinned connections", s.status, len(s.pinned))
	}
}

func TestSessionTransactionCommitOrder(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "START TRANSACTION", &w)
	exec(t, s, "SELECT * FROM blog.t", &w)
	exec(t, s, "UPDATE shop.t SET a = 1", &w)
	exec(t, s, "SELECT * FROM crm.t", &w)
	be.takeLog()
	w.reset()
	exec(t, s, "COMMIT", &w)
	// Readers first (in name order), the writer last.
	wantLog(t, be, "s_blog#2: COMMIT", "s_crm#3: COMMIT", "s_shop#1: COMMIT")
	if oks := w.oks(); len(oks) != 1 || oks[0].Status&wire.StatusInTrans != 0 {
		t.Errorf("COMMIT answered %+v", oks)
	}
	if len(s.pinned) != 0 {
		t.Errorf("%d connections still pinned after COMMIT", len(s.pinned))
	}
}

func TestSessionResetAndClose(t *testing.T) {
	be := newFakeBackend()
	r := fakeRouter(t, be)
	s := fakeSession(t, r, "app", 1)
	var w clientRecorder
	exec(t, s, "SET @x = 1", &w)
	exec(t, s, "SELECT * FROM blog.t", &w)
	if len(s.pinned) != 2 {
		t.Fatalf("%d pinned, want both connections of the sticky session", len(s.pinned))
	}
	if err := s.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.sticky || len(s.pinned) != 0 {
		t.Errorf("after Reset: sticky %v, %d pinned", s.sticky, len(s.pinned))
	}
	for _, sh := range []string{"s_shop", "s_blog"} {
		if c := be.idle[sh]; len(c) != 1 || c[0].resets != 1 {
			t.Errorf("%s: the sticky connection must be reset by the pool on release", sh)
		}
	}
	// Close with a transaction open: the connection goes back dirty (the pool rolls back).
	s2 := fakeSession(t, r, "app", 2)
	exec(t, s2, "BEGIN", &w)
	exec(t, s2, "UPDATE shop.t SET a = 1", &w)
	s2.Close()
	if c := be.idle["s_shop"]; len(c) != 1 || c[0].resets != 2 {
		t.Error("closing a session in a transaction must hand its connection back for a reset")
	}
}

func TestSessionFieldList(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	if err := s.FieldList(context.Background(), "t", "", &w); sqlCode(err) != sqlerr.ErNoDB {
		t.Errorf("without a database: %v, want 1046", err)
	}
	if err := s.UseDB(context.Background(), "blog"); err != nil {
		t.Fatal(err)
	}
	if err := s.FieldList(context.Background(), "posts", "", &w); err != nil {
		t.Fatal(err)
	}
	wantLog(t, be, "s_blog#1: USE blog_p", "s_blog#1: FIELD_LIST posts")
	if len(w.Pkts) != 2 || !wire.IsEOF(w.Pkts[1]) {
		t.Errorf("client got % x", w.Pkts)
	}
}

// TestSessionUseAfterPinning: a connection pinned before the client chose a database (a
// transaction or a user variable started first) must follow a later USE like any other.
func TestSessionUseAfterPinning(t *testing.T) {
	for _, first := range []string{"BEGIN", "SET @x = 1"} {
		t.Run(first, func(t *testing.T) {
			be := newFakeBackend()
			s := fakeSession(t, fakeRouter(t, be), "app", 1)
			var w clientRecorder
			exec(t, s, first, &w)
			exec(t, s, "USE shop", &w)
			exec(t, s, "SELECT * FROM t", &w)
			got := be.takeLog()
			want := []string{"s_shop#1: " + first, "s_shop#1: USE shop_0", "s_shop#1: SELECT * FROM t"}
			if !slices.Equal(got, want) {
				t.Errorf("a USE after the connection was pinned must reach it (Session.acquire runs prepareConn on "+
					"pinned connections too)\nbackend received %q\nwant %q", got, want)
			}
		})
	}
}

// TestSessionSetReachesPinnedConnections: a session variable set while the session holds
// pinned connections on several shards must reach all of them, not only the one the SET
// ran on.
func TestSessionSetReachesPinnedConnections(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "SET @x = 1", &w)           // sticky: pins s_shop#1
	exec(t, s, "SELECT * FROM blog.t", &w) // pins s_blog#2
	be.values["sql_mode"] = "ANSI"
	exec(t, s, "SET sql_mode = 'ANSI'", &w) // runs on the default shard's connection
	be.takeLog()
	exec(t, s, "SELECT * FROM blog.t", &w)
	got := be.takeLog()
	want := []string{"s_blog#2: SET SESSION sql_mode = 'ANSI'", "s_blog#2: SELECT * FROM `blog_p`.`t`"}
	if !slices.Equal(got, want) {
		t.Errorf("session variables set on one shard's connection must be replayed on the session's other "+
			"pinned connections\nbackend received %q\nwant %q", got, want)
	}
}

func shardedRouter(t *testing.T, be *fakeBackend) *Router {
	t.Helper()
	snap, err := rules.Build(plantest.ShardedConfig())
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Rules: rules.NewStore(snap), Backend: be})
}

// TestSessionDDLFanOut: DDL on a sharded or broadcast table runs on every physical copy.
func TestSessionDDLFanOut(t *testing.T) {
	cases := []struct {
		sql  string
		want []string
	}{
		{"ALTER TABLE accounts ADD COLUMN note TEXT", []string{
			"s0#1: ALTER TABLE `accounts_0000` ADD COLUMN `note` TEXT",
			"s0#1: ALTER TABLE `accounts_0001` ADD COLUMN `note` TEXT",
			"s1#2: ALTER TABLE `accounts_0002` ADD COLUMN `note` TEXT",
			"s1#2: ALTER TABLE `accounts_0003` ADD COLUMN `note` TEXT",
			"s2#3: ALTER TABLE `accounts_0004` ADD COLUMN `note` TEXT",
			"s2#3: ALTER TABLE `accounts_0005` ADD COLUMN `note` TEXT",
			"s3#4: ALTER TABLE `accounts_0006` ADD COLUMN `note` TEXT",
			"s3#4: ALTER TABLE `accounts_0007` ADD COLUMN `note` TEXT",
		}},
		{"CREATE TABLE shop.orders (id INT, user_id INT)", []string{
			"s0#1: CREATE TABLE `shop_s0`.`orders` (`id` INT,`user_id` INT)",
			"s1#2: CREATE TABLE `shop_s1`.`orders` (`id` INT,`user_id` INT)",
			"s2#3: CREATE TABLE `shop_s2`.`orders` (`id` INT,`user_id` INT)",
			"s3#4: CREATE TABLE `shop_s3`.`orders` (`id` INT,`user_id` INT)",
		}},
		{"TRUNCATE TABLE currencies", []string{
			"s0#1: TRUNCATE TABLE `currencies`",
			"s1#2: TRUNCATE TABLE `currencies`",
			"s2#3: TRUNCATE TABLE `currencies`",
			"s3#4: TRUNCATE TABLE `currencies`",
		}},
		{"CREATE TABLE settings (k INT)", []string{"s0#1: CREATE TABLE settings (k INT)"}},
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			be := newFakeBackend()
			s := fakeSession(t, shardedRouter(t, be), "app", 1)
			s.db = "shop"
			var w clientRecorder
			exec(t, s, c.sql, &w)
			got := be.takeLog()
			var stmts []string
			for _, l := range got {
				if !strings.Contains(l, ": USE ") {
					stmts = append(stmts, l)
				}
			}
			if !slices.Equal(stmts, c.want) {
				t.Errorf("backend received\n%q\nwant\n%q", stmts, c.want)
			}
			if oks := w.oks(); len(oks) != 1 {
				t.Errorf("client got %d OKs, want one", len(oks))
			}
		})
	}
}

func TestSessionDDLPartialFailure(t *testing.T) {
	be := newFakeBackend()
	be.failShards = map[string]bool{"s1": true}
	s := fakeSession(t, shardedRouter(t, be), "app", 1)
	s.db = "shop"
	err := s.Query(context.Background(), "CREATE TABLE orders (id INT)", false, &clientRecorder{})
	e, ok := sqlerr.As(err)
	if !ok || e.Code != 1050 {
		t.Fatalf("err = %v, want 1050", err)
	}
	want := "DDL partially applied: succeeded on [s0:orders, s2:orders, s3:orders]; failed on [s1:orders (1050: Table 'x' already exists)]"
	if e.Message != want {
		t.Errorf("message %q\nwant %q", e.Message, want)
	}
	be.failShards = map[string]bool{"s0": true, "s1": true, "s2": true, "s3": true}
	err = s.Query(context.Background(), "CREATE TABLE orders (id INT)", false, &clientRecorder{})
	if e, ok := sqlerr.As(err); !ok || e.Message != "Table 'x' already exists" {
		t.Errorf("failing the same way everywhere: %v, want the backend's error as is", err)
	}
}

func intParam(v int64) wire.Param {
	return wire.Param{Type: 0x08, Value: binary.LittleEndian.AppendUint64(nil, uint64(v))}
}

// TestSessionPreparedRouting: a statement routed by its parameter is prepared on slot 0's
// shard to describe it, then executed on the shard of each execution's key, prepared there
// once per connection.
func TestSessionPreparedRouting(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, shardedRouter(t, be), "app", 1)
	s.db = "shop"
	ctx := context.Background()
	st, err := s.Prepare(ctx, "SELECT * FROM orders WHERE user_id = ?")
	if err != nil {
		t.Fatal(err)
	}
	if st.NumParams() != 1 || len(st.ParamDefs()) != 1 || len(st.ColumnDefs()) != 1 {
		t.Errorf("statement %d params, %d defs, %d columns", st.NumParams(), len(st.ParamDefs()), len(st.ColumnDefs()))
	}
	var w clientRecorder
	for _, user := range []int64{1, 2, 1} { // slots 1 (s1), 0 (s0), 1 again
		if err := s.Execute(ctx, st, []wire.Param{intParam(user)}, &w); err != nil {
			t.Fatalf("execute %d: %v", user, err)
		}
	}
	args := func(v int64) string {
		return fmt.Sprintf("% x", append([]byte{0, 1, 0x08, 0}, binary.LittleEndian.AppendUint64(nil, uint64(v))...))
	}
	wantLog(t, be,
		"s0#1: USE shop_s0",
		"s0#1: PREPARE SELECT * FROM orders WHERE user_id = ?",
		"s1#2: USE shop_s1",
		"s1#2: PREPARE SELECT * FROM orders WHERE user_id = ?",
		"s1#2: EXECUTE 2 "+args(1),
		"s0#1: EXECUTE 1 "+args(2),
		"s1#2: EXECUTE 2 "+args(1),
	)
	if err := s.Execute(ctx, st, nil, &w); sqlCode(err) != sqlerr.ErWrongArguments {
		t.Errorf("execute without its parameter: %v, want 1210", err)
	}
	for _, sql := range []string{"USE shop", "SET @x = 1", "SELECT 1; SELECT 2"} {
		if _, err := s.Prepare(ctx, sql); err == nil {
			t.Errorf("Prepare(%q) succeeded", sql)
		}
	}
}
