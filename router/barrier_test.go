package router

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestBarrier: the barrier's decision per statement shape, on every path by which SQL
// reaches a backend (a plain query, a multi-statement query, SQL-level PREPARE, EXECUTE
// IMMEDIATE, SET STATEMENT ... FOR, RETURNING, unparsed text, COM_STMT_PREPARE). A refused
// statement sends nothing to a backend; an allowed one sends what is listed.
func TestBarrier(t *testing.T) {
	cases := []struct {
		name string
		sql  string
		code uint16   // 0: allowed
		sent []string // what the backend receives when allowed (after USE)
	}{
		{"CreateUser", `CREATE USER evil IDENTIFIED BY 'x'`, sqlerr.ErSpecificAccessDenied, nil},
		{"CreateOrReplaceUserUnparsed", `CREATE OR REPLACE USER evil IDENTIFIED BY 'x'`, sqlerr.ErSpecificAccessDenied, nil},
		{"PrepareCreateUser", `PREPARE s FROM 'CREATE USER evil@"%" IDENTIFIED BY "x"'`, sqlerr.ErSpecificAccessDenied, nil},
		{"PrepareGrant", `PREPARE s FROM 'GRANT ALL ON *.* TO app'`, sqlerr.ErSpecificAccessDenied, nil},
		{"PrepareBackendAccounts", `PREPARE s FROM 'SELECT user,host FROM mysql.user'`, sqlerr.ErDBAccessDenied, nil},
		{"PrepareLoadFile", `PREPARE s FROM 'SELECT LENGTH(LOAD_FILE("/etc/passwd"))'`, sqlerr.ErSpecificAccessDenied, nil},
		{"PrepareOutfile", `PREPARE s FROM 'SELECT 1 INTO OUTFILE "/tmp/x"'`, sqlerr.ErSpecificAccessDenied, nil},
		// The variable is read from the backend (the fake answers "1", not a statement).
		{"PrepareFromVariable", `PREPARE s FROM @text`, sqlerr.ErParse, []string{"SELECT @`text`"}},
		{"PrepareShowDatabases", `PREPARE s FROM 'SHOW DATABASES'`, sqlerr.ErNotSupportedYet, nil},
		{"PrepareNestedPrepare", `PREPARE s FROM 'PREPARE t FROM ''SELECT 1'''`, sqlerr.ErUnsupportedPS, nil},
		{"PrepareSetGlobal", `PREPARE s FROM 'SET GLOBAL read_only = 1'`, sqlerr.ErSpecificAccessDenied, nil},
		{"PrepareUnparsed", `PREPARE s FROM 'EXECUTE IMMEDIATE ''SELECT 1'''`, sqlerr.ErParse, nil},
		{"PrepareHiddenComment", `PREPARE s FROM 'SELECT 1 /*M!, (SELECT 2) */'`, sqlerr.ErNotSupportedYet, nil},
		{"ExecuteImmediate", `EXECUTE IMMEDIATE 'SELECT user FROM mysql.user LIMIT 2'`, sqlerr.ErDBAccessDenied, nil},
		{"ExecuteImmediateHarmless", `EXECUTE IMMEDIATE 'SELECT 1'`, 0, []string{"SELECT 1"}},
		{"ExecuteUnknown", `EXECUTE nope`, sqlerr.ErUnknownStmtHandler, nil},
		{"DeallocateUnknown", `DEALLOCATE PREPARE nope`, sqlerr.ErUnknownStmtHandler, nil},
		{"SetStatementBackendAccounts", `SET STATEMENT max_statement_time=1 FOR SELECT user FROM mysql.user`, sqlerr.ErDBAccessDenied, nil},
		{"SetStatementCreateUser", `SET STATEMENT max_statement_time=1 FOR CREATE USER evil`, sqlerr.ErSpecificAccessDenied, nil},
		{"SetStatementBinlogOff", `SET STATEMENT sql_log_bin=0 FOR INSERT INTO t VALUES (1)`, sqlerr.ErSpecificAccessDenied, nil},
		{"SetStatementGlobal", `SET STATEMENT @@global.max_connections=1 FOR SELECT 1`, sqlerr.ErSpecificAccessDenied, nil},
		{"SetStatementSubquery", `SET STATEMENT max_statement_time=(SELECT COUNT(*) FROM mysql.user) FOR SELECT 1`, sqlerr.ErParse, nil},
		{"SetStatementUserVariable", `SET STATEMENT @x=1 FOR SELECT 1`, sqlerr.ErParse, nil},
		{"SetStatementForInString", `SET STATEMENT lc_time_names='x FOR SELECT 1' FOR SELECT user FROM mysql.user`, sqlerr.ErDBAccessDenied, nil},
		{"ShowGrants", `SHOW GRANTS`, sqlerr.ErSpecificAccessDenied, nil},
		{"ShowGrantsForRoot", `SHOW GRANTS FOR root`, sqlerr.ErSpecificAccessDenied, nil},
		{"ShowCreateUser", `SHOW CREATE USER root`, sqlerr.ErSpecificAccessDenied, nil},
		{"ShowMasterStatus", `SHOW MASTER STATUS`, sqlerr.ErSpecificAccessDenied, nil},
		{"ShowSlaveStatus", `SHOW SLAVE STATUS`, sqlerr.ErSpecificAccessDenied, nil},
		{"ShowOpenTablesEverywhere", `SHOW OPEN TABLES`, sqlerr.ErSpecificAccessDenied, nil},
		{"PrepareShowGrants", `PREPARE s FROM 'SHOW GRANTS'`, sqlerr.ErSpecificAccessDenied, nil},
		{"DataDirectory", `CREATE TABLE x (a INT) DATA DIRECTORY = '/tmp'`, sqlerr.ErSpecificAccessDenied, nil},
		{"ConnectEngine", `CREATE TABLE x (a TEXT) ENGINE=CONNECT`, sqlerr.ErSpecificAccessDenied, nil},
		{"FederatedConnection", `CREATE TABLE x (a INT) ENGINE=FEDERATED CONNECTION='mysql://root@other/db/t'`, sqlerr.ErSpecificAccessDenied, nil},
		{"MergeOfOtherTables", `ALTER TABLE t ENGINE=MERGE UNION=(t2)`, sqlerr.ErSpecificAccessDenied, nil},
		{"PartitionDataDirectory", `CREATE TABLE x (a INT) PARTITION BY HASH(a) (PARTITION p0 DATA DIRECTORY = '/tmp')`, sqlerr.ErSpecificAccessDenied, nil},
		{"CopyOfBackendAccounts", `CREATE TABLE x AS SELECT * FROM mysql.user`, sqlerr.ErDBAccessDenied, nil},
		{"LikeBackendAccounts", `CREATE TABLE x LIKE mysql.user`, sqlerr.ErDBAccessDenied, nil},
		{"SetNamesGBK", `SET NAMES gbk`, sqlerr.ErNotSupportedYet, nil},
		{"SetCharacterSetGBK", `SET CHARACTER SET gbk`, sqlerr.ErNotSupportedYet, nil},
		{"SetNamesUnknownToParser", `SET NAMES sjis`, sqlerr.ErParse, nil},
		{"SetClientBig5", `SET character_set_client = 'big5'`, sqlerr.ErNotSupportedYet, nil},
		{"SetClientCP932Identifier", `SET @@session.character_set_client = cp932`, sqlerr.ErNotSupportedYet, nil},

		{"SetStatementSQLMode", `SET STATEMENT sql_mode='NO_BACKSLASH_ESCAPES' FOR SELECT 'a\' UNION SELECT user FROM mysql.user -- '`, sqlerr.ErNotSupportedYet, nil},
		{"SetStatementCharset", `SET STATEMENT character_set_client='gbk' FOR SELECT 1`, sqlerr.ErNotSupportedYet, nil},
		{"SetBinlogOff", `SET sql_log_bin = 0`, sqlerr.ErSpecificAccessDenied, nil},
		{"HiddenComment", `SELECT 1 /*M!, (SELECT authentication_string FROM mysql.user LIMIT 1) */`, sqlerr.ErDBAccessDenied, nil},
		{"HiddenVersionedComment", `SELECT 1 /*m!100000 , LOAD_FILE('/etc/passwd') */`, sqlerr.ErSpecificAccessDenied, nil},
		{"HiddenCommentInMultiStatement", "SELECT 1; /*M! CREATE USER evil */", sqlerr.ErSpecificAccessDenied, []string{"SELECT 1"}},
		{"HiddenCommentInString", `SELECT '/*M! x */'`, sqlerr.ErNotSupportedYet, nil},
		{"ReturningSubquery", `INSERT INTO t VALUES (1) RETURNING (SELECT user FROM mysql.user LIMIT 1)`, sqlerr.ErDBAccessDenied, nil},
		{"ReturningLoadFile", `DELETE FROM t RETURNING LOAD_FILE('/etc/passwd')`, sqlerr.ErSpecificAccessDenied, nil},
		{"UnparsedFileRead", `SELECT LOAD_FILE('/etc/passwd') LIMIT ROWS EXAMINED 1`, sqlerr.ErSpecificAccessDenied, nil},
		{"UnparsedHandler", `HANDLER t OPEN`, sqlerr.ErParse, nil},
		{"MultiStatementSecond", `SELECT 1; PREPARE s FROM 'SELECT * FROM mysql.user'`, sqlerr.ErDBAccessDenied, []string{"SELECT 1"}},

		{"SetNamesLatin1", `SET NAMES latin1`, 0, []string{"SET NAMES latin1", "SELECT @@session.character_set_client, @@session.character_set_connection, @@session.character_set_results, @@session.collation_connection"}},
		{"CreateTableInnoDB", `CREATE TABLE x (a INT) ENGINE=InnoDB`, 0, []string{"CREATE TABLE x (a INT) ENGINE=InnoDB"}},
		{"Prepare", `PREPARE s FROM 'SELECT ? + 1'`, 0, []string{"PREPARE `s` FROM 'SELECT ? + 1'"}},
		{"PrepareQualified", `PREPARE s FROM 'SELECT * FROM blog.t'`, 0, []string{"PREPARE `s` FROM 'SELECT * FROM `blog_p`.`t`'"}},
		{"SetStatement", `SET STATEMENT max_statement_time=1 FOR SELECT 1`, 0, []string{"SET STATEMENT max_statement_time=1 FOR SELECT 1"}},
		{"SetStatementWrite", `SET STATEMENT lock_wait_timeout=5 FOR INSERT INTO blog.t VALUES (1)`, 0,
			[]string{"SET STATEMENT lock_wait_timeout=5 FOR INSERT INTO `blog_p`.`t` VALUES (1)"}},
		{"Returning", `INSERT INTO t (a) VALUES (1) RETURNING id, a * 2 AS b`, 0, []string{"INSERT INTO t (a) VALUES (1) RETURNING id, a * 2 AS b"}},
		{"ExecutableComment", `SELECT 1 /*M!100616 , 2 */`, 0, []string{"SELECT 1   , 2  "}},
		{"LaterVersionComment", `SELECT 1 /*M!999999 , LOAD_FILE('/etc/passwd') */`, 0, []string{"SELECT 1  "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := newFakeBackend()
			s := fakeSession(t, fakeRouter(t, be), "app", 1)
			s.db = "blog"
			var w clientRecorder
			err := s.Query(context.Background(), tc.sql, true, &w)
			if sqlCode(err) != tc.code {
				t.Fatalf("%s: %v, want code %d", tc.sql, err, tc.code)
			}
			var want []string
			for _, q := range tc.sent {
				if len(want) == 0 {
					want = append(want, "s_blog#1: USE blog_p")
				}
				want = append(want, "s_blog#1: "+q)
			}
			wantLog(t, be, want...)
		})
	}
}

// TestBarrierBinaryPrepare: COM_STMT_PREPARE passes the same barrier.
func TestBarrierBinaryPrepare(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		code uint16
	}{
		{`EXECUTE IMMEDIATE 'SELECT user FROM mysql.user'`, sqlerr.ErParse},
		{`CREATE OR REPLACE USER evil`, sqlerr.ErSpecificAccessDenied},
		{`SELECT 1 /*M!, (SELECT user FROM mysql.user) */`, sqlerr.ErDBAccessDenied},
		{`PREPARE s FROM 'SELECT 1'`, sqlerr.ErUnsupportedPS},
		{`SELECT user FROM mysql.user`, sqlerr.ErDBAccessDenied},
		{`INSERT INTO t VALUES (?) RETURNING (SELECT user FROM mysql.user LIMIT 1)`, sqlerr.ErDBAccessDenied},
		{`SET STATEMENT max_statement_time=1 FOR SELECT 1`, sqlerr.ErParse},
	} {
		be := newFakeBackend()
		s := fakeSession(t, fakeRouter(t, be), "app", 1)
		s.db = "blog"
		if _, err := s.Prepare(context.Background(), tc.sql); sqlCode(err) != tc.code {
			t.Errorf("prepare %s: %v, want code %d", tc.sql, err, tc.code)
		}
		wantLog(t, be)
	}
}

// TestSQLPrepareExecute: EXECUTE and DEALLOCATE go to the shard that holds the statement,
// and COM_RESET_CONNECTION forgets it.
func TestSQLPrepareExecute(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	s.db = "blog"
	var w clientRecorder
	exec(t, s, "PREPARE S1 FROM 'SELECT 1'", &w)
	exec(t, s, "EXECUTE s1", &w)
	exec(t, s, "SET @a = 1", &w)
	exec(t, s, "EXECUTE s1 USING @a", &w)
	exec(t, s, "DROP PREPARE s1", &w)
	if err := s.Query(context.Background(), "EXECUTE s1", false, &w); sqlCode(err) != sqlerr.ErUnknownStmtHandler {
		t.Errorf("EXECUTE after DEALLOCATE: %v, want 1243", err)
	}
	exec(t, s, "PREPARE s2 FROM 'SELECT 1'", &w)
	if err := s.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Query(context.Background(), "EXECUTE s2", false, &w); sqlCode(err) != sqlerr.ErUnknownStmtHandler {
		t.Errorf("EXECUTE after COM_RESET_CONNECTION: %v, want 1243", err)
	}
	got := strings.Join(be.takeLog(), "\n")
	for _, want := range []string{"PREPARE `S1` FROM 'SELECT 1'", "EXECUTE s1", "EXECUTE s1 USING @a", "DROP PREPARE s1"} {
		if !strings.Contains(got, "s_blog#1: "+want+"\n") {
			t.Errorf("backend did not receive %q:\n%s", want, got)
		}
	}
}

// TestResetClearsSession: COM_RESET_CONNECTION leaves the session as a fresh login finds
// it (database and character set apart).
func TestResetClearsSession(t *testing.T) {
	be := newFakeBackend()
	r := fakeRouter(t, be)
	fresh := fakeSession(t, r, "app", 2)
	s := fakeSession(t, r, "app", 1)
	s.db = "blog"
	var w clientRecorder
	exec(t, s, "PREPARE ps FROM 'SELECT 1'", &w)
	mode := "ANSI_QUOTES"
	s.vars.setSQLMode(&mode)
	s.vars.replace(map[string]string{"sql_mode": "'ANSI_QUOTES'", "character_set_client": "'latin1'"})
	s.vars.execTime, s.vars.execTimeSet = time.Second, true
	s.tx.Begin("BEGIN")
	_ = s.tx.Write("s_blog", true)
	s.tx.Savepoint("a")
	s.ids.last = 7
	s.diag.last.RowCount = 3
	if err := s.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.vars.execTime != fresh.vars.execTime || s.vars.execTimeSet != fresh.vars.execTimeSet {
		t.Errorf("session deadline after reset: %v, %v", s.vars.execTime, s.vars.execTimeSet)
	}
	if len(s.tx.Writers()) != 0 || s.tx.BeginText() != "" || s.tx.Savepoints() != nil || s.sticky || len(s.pinned) != 0 {
		t.Errorf("transaction bookkeeping after reset: written %v, begin %q, savepoints %v, sticky %v, pinned %d",
			s.tx.Writers(), s.tx.BeginText(), s.tx.Savepoints(), s.sticky, len(s.pinned))
	}
	if s.sqlStmts.byName != nil || s.ids.last != 0 || s.diag.last.RowCount != fresh.diag.last.RowCount {
		t.Errorf("statements and diagnostics after reset: %v, %d, %d", s.sqlStmts.byName, s.ids.last, s.diag.last.RowCount)
	}
	if s.vars.restoreFlags != fresh.vars.restoreFlags || s.vars.get("sql_mode") != "" || s.vars.get("character_set_client") != "'latin1'" {
		t.Errorf("variables after reset: %v (restore flags %v)", s.vars.values, s.vars.restoreFlags)
	}
	// The parser reads "x" as a string again, not as an ANSI_QUOTES identifier.
	st, err := s.parseOne(`SELECT "x"`)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := planner.RestoreSQL(s.vars.restoreFlags, s.lists, st); got != "SELECT _UTF8MB4'x'" && got != "SELECT 'x'" {
		t.Errorf(`SELECT "x" after reset reads as %s`, got)
	}
}

// TestBarrierFannedOutDDL: DDL on sharded tables, which is fanned out to every physical
// table without being planned, passes the barrier too.
func TestBarrierFannedOutDDL(t *testing.T) {
	for _, sql := range []string{
		"ALTER TABLE orders ENGINE=CONNECT",
		"ALTER TABLE orders CONNECTION='mysql://root@elsewhere/db/t'",
		"CREATE TABLE shop.orders (id INT) DATA DIRECTORY='/tmp'",
	} {
		be := newFakeBackend()
		s := fakeSession(t, shardedRouter(t, be), "app", 1)
		s.db = "shop"
		var w clientRecorder
		if err := s.Query(context.Background(), sql, false, &w); sqlCode(err) != sqlerr.ErSpecificAccessDenied {
			t.Errorf("%s: %v, want 1227", sql, err)
		}
		wantLog(t, be)
	}
}

// TestHandshakeEscapeUnsafeCharset: a client announcing an escape-unsafe character set at
// the handshake keeps the baseline one, so the backend reads its bytes as the parser does.
func TestHandshakeEscapeUnsafeCharset(t *testing.T) {
	r := fakeRouter(t, newFakeBackend())
	for id, want := range map[uint8]string{28: "", 13: "", 8: "'latin1'", 45: ""} { // gbk, sjis, latin1, utf8mb4 (baseline)
		s, err := r.NewSession(context.Background(), SessionInfo{ConnID: 1, User: "app", Collation: id})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.vars.get("character_set_client"); got != want {
			t.Errorf("collation %d: character_set_client %q, want %q", id, got, want)
		}
		s.Close()
	}
}

// TestSQLModeFollowed: the parser follows every sql_mode name it knows, even beside
// MariaDB-only ones; under ORACLE (another grammar in MariaDB) only SET passes.
func TestSQLModeFollowed(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	s.db = "blog"
	mode := "ANSI_QUOTES,EMPTY_STRING_IS_NULL"
	s.vars.setSQLMode(&mode)
	st, err := s.parseOne(`SELECT "a" FROM t`)
	if err != nil {
		t.Fatalf(`under ANSI_QUOTES "a" is a column: %v`, err)
	}
	if got, _ := planner.RestoreSQL(s.vars.restoreFlags, s.lists, st); got != "SELECT `a` FROM `t`" {
		t.Errorf("restored as %s", got)
	}
	// MariaDB ends "a\" at its second quote; the parser would not: refused.
	s.vars.replace(map[string]string{"sql_mode": "'ANSI_QUOTES,EMPTY_STRING_IS_NULL'"})
	var w clientRecorder
	if err := s.Query(context.Background(), `SELECT "a\" FROM x WHERE 0 UNION SELECT user FROM mysql.user -- " FROM t`, false, &w); sqlCode(err) != sqlerr.ErNotSupportedYet {
		t.Errorf("backslash before a double quote under ANSI_QUOTES: %v, want 1235", err)
	}
	exec(t, s, `SELECT "a", 'b\'' FROM t`, &w)
	be.takeLog()

	s.vars.replace(map[string]string{"sql_mode": "'PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ORACLE,SIMULTANEOUS_ASSIGNMENT'"})
	for _, sql := range []string{"SELECT 1", "SELECT 1; SET @a = 1", "DECLARE x INT", "SET @a = 1; SELECT 1"} {
		if err := s.Query(context.Background(), sql, true, &w); sqlCode(err) != sqlerr.ErNotSupportedYet {
			t.Errorf("%s under ORACLE: %v, want 1235", sql, err)
		}
	}
	if _, err := s.Prepare(context.Background(), "SELECT 1"); sqlCode(err) != sqlerr.ErNotSupportedYet {
		t.Errorf("prepare under ORACLE: %v, want 1235", err)
	}
	wantLog(t, be)
	exec(t, s, "SET sql_mode = DEFAULT", &w)
}

// TestEscapeUnsafeFromExpression: a client character set set from an expression is judged
// by the value read back: under an escape-unsafe one only ASCII text passes.
func TestEscapeUnsafeFromExpression(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	s.db = "blog"
	s.vars.replace(map[string]string{"character_set_client": "'gbk'"}) // as read back after SET character_set_client = @cs
	var w clientRecorder
	if err := s.Query(context.Background(), "SELECT 'x\xbf\\' UNION SELECT user FROM mysql.user -- '", false, &w); sqlCode(err) != sqlerr.ErNotSupportedYet {
		t.Errorf("non-ASCII text under gbk: %v, want 1235", err)
	}
	wantLog(t, be)
	exec(t, s, "SELECT 'plain ascii'", &w)
	exec(t, s, "SET NAMES utf8mb4", &w)
}
