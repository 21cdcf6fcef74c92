package router

import (
	"context"
	"strings"
	"testing"

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
		{"PrepareFromVariable", `PREPARE s FROM @text`, sqlerr.ErNotSupportedYet, nil},
		{"PrepareShowDatabases", `PREPARE s FROM 'SHOW DATABASES'`, sqlerr.ErNotSupportedYet, nil},
		{"PrepareNestedPrepare", `PREPARE s FROM 'PREPARE t FROM ''SELECT 1'''`, sqlerr.ErUnsupportedPS, nil},
		{"PrepareSetGlobal", `PREPARE s FROM 'SET GLOBAL read_only = 1'`, sqlerr.ErSpecificAccessDenied, nil},
		{"PrepareUnparsed", `PREPARE s FROM 'EXECUTE IMMEDIATE ''SELECT 1'''`, sqlerr.ErParse, nil},
		{"PrepareHiddenComment", `PREPARE s FROM 'SELECT 1 /*M!, (SELECT 2) */'`, sqlerr.ErNotSupportedYet, nil},
		{"ExecuteImmediate", `EXECUTE IMMEDIATE 'SELECT user FROM mysql.user LIMIT 2'`, sqlerr.ErParse, nil},
		{"ExecuteImmediateHarmless", `EXECUTE IMMEDIATE 'SELECT 1'`, sqlerr.ErParse, nil},
		{"ExecuteUnknown", `EXECUTE nope`, sqlerr.ErUnknownStmtHandler, nil},
		{"DeallocateUnknown", `DEALLOCATE PREPARE nope`, sqlerr.ErUnknownStmtHandler, nil},
		{"SetStatementBackendAccounts", `SET STATEMENT max_statement_time=1 FOR SELECT user FROM mysql.user`, sqlerr.ErDBAccessDenied, nil},
		{"SetStatementCreateUser", `SET STATEMENT max_statement_time=1 FOR CREATE USER evil`, sqlerr.ErSpecificAccessDenied, nil},
		{"SetStatementBinlogOff", `SET STATEMENT sql_log_bin=0 FOR INSERT INTO t VALUES (1)`, sqlerr.ErSpecificAccessDenied, nil},
		{"SetStatementGlobal", `SET STATEMENT @@global.max_connections=1 FOR SELECT 1`, sqlerr.ErSpecificAccessDenied, nil},
		{"SetStatementSubquery", `SET STATEMENT max_statement_time=(SELECT COUNT(*) FROM mysql.user) FOR SELECT 1`, sqlerr.ErParse, nil},
		{"SetStatementUserVariable", `SET STATEMENT @x=1 FOR SELECT 1`, sqlerr.ErParse, nil},
		{"SetStatementForInString", `SET STATEMENT sql_mode='x FOR SELECT 1' FOR SELECT user FROM mysql.user`, sqlerr.ErDBAccessDenied, nil},
		{"SetBinlogOff", `SET sql_log_bin = 0`, sqlerr.ErSpecificAccessDenied, nil},
		{"HiddenComment", `SELECT 1 /*M!, (SELECT authentication_string FROM mysql.user LIMIT 1) */`, sqlerr.ErNotSupportedYet, nil},
		{"HiddenVersionedComment", `SELECT 1 /*m!100000 , LOAD_FILE('/etc/passwd') */`, sqlerr.ErNotSupportedYet, nil},
		{"ReturningSubquery", `INSERT INTO t VALUES (1) RETURNING (SELECT user FROM mysql.user LIMIT 1)`, sqlerr.ErDBAccessDenied, nil},
		{"ReturningLoadFile", `DELETE FROM t RETURNING LOAD_FILE('/etc/passwd')`, sqlerr.ErSpecificAccessDenied, nil},
		{"UnparsedFileRead", `SELECT LOAD_FILE('/etc/passwd') LIMIT ROWS EXAMINED 1`, sqlerr.ErSpecificAccessDenied, nil},
		{"UnparsedHandler", `HANDLER t OPEN`, sqlerr.ErParse, nil},
		{"MultiStatementSecond", `SELECT 1; PREPARE s FROM 'SELECT * FROM mysql.user'`, sqlerr.ErDBAccessDenied, []string{"SELECT 1"}},

		{"Prepare", `PREPARE s FROM 'SELECT ? + 1'`, 0, []string{"PREPARE `s` FROM 'SELECT ? + 1'"}},
		{"PrepareQualified", `PREPARE s FROM 'SELECT * FROM blog.t'`, 0, []string{"PREPARE `s` FROM 'SELECT * FROM `blog_p`.`t`'"}},
		{"SetStatement", `SET STATEMENT max_statement_time=1 FOR SELECT 1`, 0, []string{"SET STATEMENT max_statement_time=1 FOR SELECT 1"}},
		{"SetStatementWrite", `SET STATEMENT sql_mode='' FOR INSERT INTO blog.t VALUES (1)`, 0,
			[]string{"SET STATEMENT sql_mode='' FOR INSERT INTO `blog_p`.`t` VALUES (1)"}},
		{"Returning", `INSERT INTO t (a) VALUES (1) RETURNING id, a * 2 AS b`, 0, []string{"INSERT INTO t (a) VALUES (1) RETURNING id, a * 2 AS b"}},
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
		{`SELECT 1 /*M!, (SELECT 2) */`, sqlerr.ErNotSupportedYet},
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

func TestSplitSetStatement(t *testing.T) {
	for _, tc := range []struct {
		sql, assign, stmt string
		ok                bool
	}{
		{"SET STATEMENT max_statement_time=1 FOR SELECT 1", "max_statement_time=1", "SELECT 1", true},
		{"  set statement a='for', b=(1) for\nselect 2", "a='for', b=(1)", "select 2", true},
		{"SET STATEMENT a=`for` FOR SELECT 1", "a=`for`", "SELECT 1", true},
		{"SET STATEMENT a=1 /* FOR */ FOR SELECT 1", "", "", false},
		{"SET STATEMENT a=1", "", "", false},
		{"SET a=1", "", "", false},
		{"SET STATEMENT t.for=1 FOR SELECT 1", "t.for=1", "SELECT 1", true},
	} {
		a, st, ok := splitSetStatement(tc.sql)
		if a != tc.assign || st != tc.stmt || ok != tc.ok {
			t.Errorf("splitSetStatement(%q) = %q, %q, %v; want %q, %q, %v", tc.sql, a, st, ok, tc.assign, tc.stmt, tc.ok)
		}
	}
}
