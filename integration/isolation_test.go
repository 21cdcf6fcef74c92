package integration

import (
	"context"
	"database/sql"
	"strings"
	"testing"
)

// testIsolation checks that a user restricted to some logical databases reaches nothing
// else through the proxy, although the proxy's own backend account (root here) can.
func testIsolation(t *testing.T, e *env) {
	mine, theirs := dbMap{Logical: "iso", Physical: "iso_phys"}, dbMap{Logical: "isoother", Physical: "isoother_phys"}
	p := startProxy(t, e.config(t, mine, theirs))
	for _, d := range []dbMap{mine, theirs} {
		mustExec(t, e.direct(t, d.Physical), "CREATE TABLE IF NOT EXISTS secret (id INT PRIMARY KEY, v VARCHAR(20))",
			"REPLACE INTO secret VALUES (1, 'of "+d.Logical+"')")
	}
	t.Cleanup(func() { e.rootExec(t, "DROP USER IF EXISTS 'iso_evil'@'%'") })
	db := p.open(t, appUser, appPass, mine.Logical)
	// Another tenant's session on the backend, in its own database.
	other, err := e.direct(t, theirs.Physical).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	mustExec(t, other, "SELECT 1")

	for _, tc := range []struct {
		name    string
		sql     string
		args    []any
		refused bool   // an error is expected
		want    string // otherwise the single value expected
	}{
		{"OwnTable", "SELECT v FROM secret", nil, false, "of iso"},
		{"OtherLogicalDatabase", "SELECT v FROM isoother.secret", nil, true, ""},
		{"OtherPhysicalDatabase", "SELECT v FROM isoother_phys.secret", nil, true, ""},
		{"ShowTablesOfOtherDatabase", "SHOW TABLES FROM isoother", nil, true, ""},
		{"BackendAccounts", "SELECT COUNT(*) FROM mysql.user", nil, true, ""},
		{"OtherDatabasesInInformationSchema", "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('isoother', 'isoother_phys', 'mysql')", nil, false, "0"},
		{"OwnTableInInformationSchema", "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'iso'", nil, false, "secret"},
		{"SchemataListsOwnDatabases", "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME", nil, false, "information_schema,iso"},
		{"PreparedOtherDatabaseColumns", "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?", []any{"isoother_phys"}, false, "0"},
		{"OtherDatabasesInJoinedInformationSchema", "SELECT COUNT(*) FROM information_schema.TABLES t JOIN information_schema.STATISTICS s USING (TABLE_SCHEMA, TABLE_NAME) WHERE s.TABLE_SCHEMA <> 'iso_phys'", nil, false, "0"},
		{"PreparedShowDatabases", "SHOW DATABASES", nil, false, "information_schema,iso"},
		{"CreateUser", "CREATE USER 'iso_evil'@'%' IDENTIFIED BY 'x'", nil, true, ""},
		{"PerformanceSchema", "SELECT COUNT(*) FROM performance_schema.threads", nil, true, ""},
		{"SysSchema", "SELECT COUNT(*) FROM sys.version", nil, true, ""},
		{"ServerFile", "SELECT LOAD_FILE('/etc/hostname')", nil, true, ""},
		{"IntoOutfile", "SELECT v FROM secret INTO OUTFILE '/tmp/iso_secret.txt'", nil, true, ""},
		{"InnoDBTablesOfEveryDatabase", "SELECT COUNT(*) FROM information_schema.INNODB_SYS_TABLES", nil, true, ""},
		{"OtherSessionsInInformationSchema", "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = 'isoother_phys'", nil, true, ""}, // refused: PROCESSLIST describes the backend server
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := querier(db)
			if strings.HasPrefix(tc.name, "Prepared") { // a server-side prepared statement, even without arguments
				st, err := db.Prepare(tc.sql)
				if err != nil {
					t.Fatalf("prepare %q: %v", tc.sql, err)
				}
				defer st.Close()
				q = stmtQuerier{st}
			}
			r, err := tryQuery(q, tc.sql, tc.args...)
			switch {
			case tc.refused && err == nil:
				t.Errorf("%q succeeded for a user restricted to %s: %v", tc.sql, mine.Logical, r.Rows)
			case !tc.refused && err != nil:
				t.Errorf("%q: %v", tc.sql, err)
			case !tc.refused:
				var vals []string
				for _, row := range r.Rows {
					vals = append(vals, text(row[0]))
				}
				if got := strings.Join(vals, ","); got != tc.want {
					t.Errorf("%q = %q, want %q", tc.sql, got, tc.want)
				}
			}
		})
	}
	t.Run("OtherSessions", func(t *testing.T) {
		// SHOW PROCESSLIST lists the proxy's own client connections of this user, never the
		// backend's sessions (the other tenant's direct one included).
		r := query(t, db, "SHOW FULL PROCESSLIST")
		if len(r.Rows) == 0 {
			t.Fatal("SHOW PROCESSLIST lists not even the connection running it")
		}
		for _, row := range r.Rows {
			if text(row[1]) != appUser || text(row[3]) != mine.Logical {
				t.Errorf("SHOW PROCESSLIST shows a session that is not the user's own: %v", row)
			}
		}
	})
}

// stmtQuerier runs a prepared statement whatever the query text it is given.
type stmtQuerier struct{ st *sql.Stmt }

func (s stmtQuerier) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return s.st.QueryContext(ctx, args...)
}

func (s stmtQuerier) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return s.st.ExecContext(ctx, args...)
}
