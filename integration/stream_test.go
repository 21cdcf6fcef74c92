package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

const bigRows = 200_000

// testStreaming streams large results and abandons some midway: a client that vanishes in
// the middle of a result must cost the proxy neither a crash nor a backend connection.
func testStreaming(t *testing.T, e *env) {
	m := dbMap{Logical: "stream", Physical: "stream_phys"}
	cfg := e.config(t, m)
	e.backendUser(t, cfg, "px_stream")
	cfg.Backends[0].Pool = poolConfig{MaxOpen: 3, MaxIdle: 3}
	p := startProxy(t, cfg)
	direct := e.direct(t, m.Physical)
	mustExec(t, direct, "CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(100))",
		fmt.Sprintf("INSERT INTO big SELECT seq, REPEAT('x', 100) FROM seq_1_to_%d", bigRows))

	t.Run("DisconnectMidStream", func(t *testing.T) {
		// Abandon more streams than the pool has connections: a leaked backend connection
		// would make the final queries wait for the pool and fail.
		for i := range 4 {
			c := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
			if err := c.command(comQuery, []byte("SELECT * FROM big")); err != nil {
				t.Fatal(err)
			}
			for range 10 {
				if _, err := c.readPacket(); err != nil {
					t.Fatalf("stream %d: %v", i, err)
				}
			}
			_ = c.nc.(*net.TCPConn).SetLinger(0) // RST, not FIN
			_ = c.nc.Close()
		}
		for i, params := range [][]string{nil, {"interpolateParams=true"}} {
			db := p.open(t, appUser, appPass, m.Logical, params...)
			for j := range 3 {
				ctx, cancel := context.WithCancel(context.Background())
				q, args := "SELECT * FROM big", []any(nil)
				if j%2 == 1 {
					q, args = q+" WHERE id > ?", []any{0} // binary protocol when the driver prepares
				}
				rows, err := db.QueryContext(ctx, q, args...)
				if err != nil {
					cancel()
					t.Fatalf("driver stream %d/%d: %v", i, j, err)
				}
				for k := 0; k < 10 && rows.Next(); k++ {
				}
				cancel() // go-sql-driver closes its connection when the context of a query ends
				_ = rows.Close()
			}
		}
		eventually(t, 30*time.Second, "the abandoned queries end on MariaDB", func() error {
			var n int
			err := e.root.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'px_stream' AND INFO LIKE 'SELECT * FROM big%'").Scan(&n)
			if err == nil && n > 0 {
				err = fmt.Errorf("%d still running", n)
			}
			return err
		})
		db := p.open(t, appUser, appPass, m.Logical)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var n, sum int64
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*), SUM(id) FROM big").Scan(&n, &sum); err != nil {
			t.Fatalf("a new session after the abandoned streams: %v", err)
		}
		if n != bigRows || sum != bigRows*(bigRows+1)/2 {
			t.Errorf("COUNT, SUM = %d, %d", n, sum)
		}
		var backends int
		if err := e.root.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'px_stream'").Scan(&backends); err != nil {
			t.Fatal(err)
		}
		if backends > 3+1 { // the pool's 3 and the reserve for KILL QUERY
			t.Errorf("%d backend connections open, the pool allows 3 (and one in reserve for KILL QUERY)", backends)
		}
		t.Run("NoInternalErrorLogged", func(t *testing.T) {
			// Regression: a client gone mid-result is closed quietly, not answered with 1105
			// and logged as an internal error.
			if lines := grepLines(p.log.String(), `msg="internal error"`); lines != "" {
				t.Errorf("client disconnects logged as internal errors:\n%s", lines)
			}
		})
	})

	t.Run("FullStream", func(t *testing.T) {
		for _, mode := range driverModes {
			db := p.open(t, appUser, appPass, m.Logical, mode.params...)
			rows, err := db.QueryContext(context.Background(), "SELECT id, pad FROM big WHERE id > ? ORDER BY id", 0)
			if err != nil {
				t.Fatal(err)
			}
			var n, sum int64
			for rows.Next() {
				var id int64
				var pad []byte
				if err := rows.Scan(&id, &pad); err != nil {
					t.Fatal(err)
				}
				if id != n+1 || len(pad) != 100 {
					t.Fatalf("%s: row %d: id %d, pad of %d bytes", mode.name, n+1, id, len(pad))
				}
				n, sum = n+1, sum+id
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("%s: %v", mode.name, err)
			}
			if n != bigRows || sum != bigRows*(bigRows+1)/2 {
				t.Errorf("%s: streamed %d rows, id sum %d", mode.name, n, sum)
			}
		}
	})
}

// testMultiStatements runs multi-statement queries through the proxy and directly on
// MariaDB (each on its own copy of the data) and compares every result.
func testMultiStatements(t *testing.T, e *env) {
	m := dbMap{Logical: "multi", Physical: "multi_p"}
	p := startProxy(t, e.config(t, m))
	e.rootExec(t, "CREATE DATABASE IF NOT EXISTS multi_d")
	const ddl = "CREATE TABLE m (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))"
	viaProxy := p.open(t, appUser, appPass, m.Logical, "multiStatements=true")
	direct := e.direct(t, "multi_d", "multiStatements=true")
	mustExec(t, viaProxy, ddl)
	mustExec(t, direct, ddl)
	pc, err := viaProxy.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dc, err := direct.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()

	cases := []struct{ name, sql string }{
		{"InsertSelectUpdate", "INSERT INTO m (v) VALUES ('a'), ('b'); SELECT id, v FROM m ORDER BY id; UPDATE m SET v = 'c' WHERE id = 1"},
		{"Selects", "SELECT 1; SELECT 'two', 2.5; SELECT NULL AS n"},
		{"OKBetweenResultSets", "SELECT 1; DO 0; INSERT INTO m (v) VALUES ('d'); SELECT COUNT(*) FROM m"},
		{"UserVariable", "SET @a := 5; SELECT @a + 1"},
		{"ErrorInTheMiddle", "SELECT 1; SELECT * FROM nosuch; SELECT 3"},
		{"TrailingSemicolon", "SELECT 1;"},
		{"SemicolonsInCommentsAndStrings", "SELECT 1 /* ; */; SELECT ';' AS semi, \"x;y\" AS dq"},
		{"EndsWithOK", "SELECT v FROM m ORDER BY id; DELETE FROM m WHERE v = 'd'"},
		{"SessionStateInTheMiddle", "SET time_zone = '+03:00'; SELECT @@time_zone; SET @v = 7; SELECT @v * 6; SET sql_mode = 'ANSI'"},
		{"TransactionInOneQuery", "BEGIN; INSERT INTO m (v) VALUES ('t1'); SELECT COUNT(*) FROM m WHERE v = 't1'; ROLLBACK; SELECT COUNT(*) FROM m WHERE v = 't1'"},
		{"BackToDefaults", "SET time_zone = DEFAULT, sql_mode = DEFAULT; SELECT @@time_zone, @@sql_mode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotQ, gotErr := multiResults(pc, tc.sql)
			wantQ, wantErr := multiResults(dc, tc.sql)
			if !sameError(gotErr, wantErr) {
				t.Errorf("Query: error through the proxy %v, directly %v", gotErr, wantErr)
			}
			if !reflect.DeepEqual(gotQ, wantQ) {
				t.Errorf("Query results differ:\n proxy  %q\n direct %q", gotQ, wantQ)
			}
			_, gotErr = pc.ExecContext(context.Background(), tc.sql)
			_, wantErr = dc.ExecContext(context.Background(), tc.sql)
			if !sameError(gotErr, wantErr) {
				t.Errorf("Exec: error through the proxy %v, directly %v", gotErr, wantErr)
			}
			// The connection is still in step with the server.
			if v := queryString(t, pc, "SELECT 42"); v != "42" {
				t.Errorf("SELECT 42 after the multi-statement: %s", v)
			}
			sameResult(t, "table after the multi-statement", query(t, pc, "SELECT * FROM m ORDER BY id"), query(t, dc, "SELECT * FROM m ORDER BY id"))
			const state = "SELECT @@time_zone, @@sql_mode, @v"
			sameResult(t, "session state after the multi-statement", query(t, pc, state), query(t, dc, state))
		})
	}

	t.Run("StoredProcedures", func(t *testing.T) {
		const proc = "CREATE PROCEDURE two(IN n INT) BEGIN SELECT n AS first; UPDATE m SET v = 'proc' WHERE id = n; SELECT n * 2 AS second; END"
		mustExec(t, e.direct(t, m.Physical), proc)
		mustExec(t, direct, proc)
		for _, c := range []struct {
			sql  string
			args []any
		}{
			{"CALL two(1)", nil},
			{"CALL two(?)", []any{2}}, // prepared: binary result sets, then the CALL's own OK
			{"CALL two(1); SELECT 'after' AS next", nil},
			{"SELECT 'before'; CALL two(1)", nil},
		} {
			got, gotErr := multiResults(pc, c.sql, c.args...)
			want, wantErr := multiResults(dc, c.sql, c.args...)
			if !sameError(gotErr, wantErr) || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: through the proxy %q (%v), directly %q (%v)", c.sql, got, gotErr, want, wantErr)
			}
			if v := queryString(t, pc, "SELECT 42"); v != "42" {
				t.Errorf("SELECT 42 after %s: %s", c.sql, v)
			}
		}
	})

	t.Run("RawPackets", func(t *testing.T) {
		for _, tc := range cases {
			rp := dialRaw(t, p.Addr)
			rd := dialRaw(t, e.srv.Addr())
			for _, c := range []struct {
				rc         *rawConn
				user, pass string
				db         string
			}{{rp, appUser, appPass, m.Logical}, {rd, e.srv.User, e.srv.Password, "multi_d"}} {
				if err := c.rc.readGreeting(); err != nil {
					t.Fatal(err)
				}
				if err := c.rc.login(c.user, c.pass, c.db, capMultiStatements); err != nil {
					t.Fatal(err)
				}
			}
			got, gotErr := rp.query(tc.sql)
			want, wantErr := rd.query(tc.sql)
			if errCode(gotErr) != errCode(wantErr) {
				t.Errorf("%s: error through the proxy %v, directly %v", tc.name, gotErr, wantErr)
			}
			if len(got) != len(want) {
				t.Errorf("%s: %d results through the proxy, %d directly", tc.name, len(got), len(want))
				continue
			}
			for i := range want {
				if g, w := fmt.Sprintf("% x|%q", got[i].OK, got[i].Rows), fmt.Sprintf("% x|%q", want[i].OK, want[i].Rows); g != w || got[i].Status != want[i].Status {
					t.Errorf("%s: result %d differs:\n proxy  %s status %#x\n direct %s status %#x", tc.name, i, g, got[i].Status, w, want[i].Status)
				}
			}
		}
	})

	t.Run("DisabledByDefault", func(t *testing.T) {
		single := p.open(t, appUser, appPass, m.Logical)
		_, err := single.Exec("SELECT 1; SELECT 2")
		wantError(t, err, 1064, "42000")
		if v := queryString(t, single, "SELECT 7"); v != "7" {
			t.Errorf("SELECT 7: %s", v)
		}
	})
}

// multiResults reads every result set of a query as text.
func multiResults(c *sql.Conn, q string, args ...any) ([][][]string, error) {
	rows, err := c.QueryContext(context.Background(), q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][][]string
	for {
		cols, _ := rows.Columns()
		set := [][]string{cols}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return out, err
			}
			row := make([]string, len(vals))
			for i, v := range vals {
				row[i] = text(v)
			}
			set = append(set, row)
		}
		out = append(out, set)
		if !rows.NextResultSet() {
			break
		}
	}
	return out, rows.Err()
}

// errCode is the code and SQLSTATE of a raw client's server error, or the error's text.
func errCode(err error) string {
	var se *serverError
	if errors.As(err, &se) {
		return fmt.Sprintf("%d (%s)", se.Code, se.State)
	}
	return fmt.Sprint(err)
}

// sameError reports whether two go-sql-driver errors are the same MySQL error (or both nil).
func sameError(a, b error) bool {
	var ma, mb *mysql.MySQLError
	if errors.As(a, &ma) && errors.As(b, &mb) {
		// Messages differ in the database name (multi_p and multi_d).
		return ma.Number == mb.Number && ma.SQLState == mb.SQLState
	}
	return (a == nil) == (b == nil)
}

// testResetConnection checks COM_RESET_CONNECTION (go-sql-driver never sends it, so the raw
// client does): user variables, prepared statements, temporary tables, session variables,
// LAST_INSERT_ID(), an open transaction and named locks are all gone after it.
func testResetConnection(t *testing.T, e *env) {
	m := dbMap{Logical: "rst", Physical: "rst_phys"}
	cfg := e.config(t, m)
	cfg.Backends[0].Pool = poolConfig{MaxOpen: 2, MaxIdle: 2}
	p := startProxy(t, cfg)
	direct := e.direct(t, m.Physical)
	mustExec(t, direct, "CREATE TABLE r (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10))")

	fresh := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
	defaultMode := fresh.queryValue(t, "SELECT @@sql_mode")

	c := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
	for _, q := range []string{
		"SET @u = 42",
		"SET SESSION sql_mode = 'ANSI_QUOTES'",
		"CREATE TEMPORARY TABLE tmp (a INT)",
		"INSERT INTO r (v) VALUES ('committed')",
		"BEGIN",
		"INSERT INTO r (v) VALUES ('open txn')",
		"SELECT GET_LOCK('rst_lock', 0)",
	} {
		if _, err := c.query(q); err != nil {
			t.Fatalf("%q: %v", q, err)
		}
	}
	stmt, _, err := c.prepare("SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	if v := c.queryValue(t, "SELECT LAST_INSERT_ID()"); v == nil || *v == "0" {
		t.Fatalf("LAST_INSERT_ID() before the reset: %v", v)
	}

	if err := c.command(comResetConnection, nil); err != nil {
		t.Fatal(err)
	}
	r, err := c.readResult()
	if err != nil || r.OK == nil {
		t.Fatalf("COM_RESET_CONNECTION: %+v, %v", r, err)
	}
	if r.Status&0x0001 != 0 || r.Status&0x0002 == 0 {
		t.Errorf("status after reset %#x: want autocommit and no transaction", r.Status)
	}

	checks := []struct {
		name, sql string
		want      *string // nil: NULL
		errCode   uint16
	}{
		{"user variable", "SELECT @u", nil, 0},
		{"sql_mode", "SELECT @@sql_mode", defaultMode, 0},
		{"LAST_INSERT_ID()", "SELECT LAST_INSERT_ID()", ptr("0"), 0},
		{"temporary table", "SELECT * FROM tmp", nil, 1146},
		{"autocommit", "SELECT @@autocommit", ptr("1"), 0},
	}
	for _, ck := range checks {
		rs, err := c.query(ck.sql)
		if ck.errCode != 0 {
			var se *serverError
			if !errors.As(err, &se) || se.Code != ck.errCode {
				t.Errorf("%s after reset: %q gave %v, want error %d", ck.name, ck.sql, err, ck.errCode)
			}
			continue
		}
		if err != nil || len(rs) != 1 || len(rs[0].Rows) != 1 {
			t.Errorf("%s after reset: %q: %+v %v", ck.name, ck.sql, rs, err)
			continue
		}
		v, null, _ := lenencString(rs[0].Rows[0])
		got := ptr(string(v))
		if null {
			got = nil
		}
		if (got == nil) != (ck.want == nil) || got != nil && *got != *ck.want {
			t.Errorf("%s after reset: %q = %v, want %v", ck.name, ck.sql, deref(got), deref(ck.want))
		}
	}
	// The prepared statement is gone.
	if err := c.command(comStmtExecute, execPayload(stmt, nil, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.readResult(); err == nil || !strings.Contains(err.Error(), "1243") {
		t.Errorf("executing a statement prepared before the reset: %v, want error 1243", err)
	}
	// The transaction was rolled back, the lock released.
	if n := queryString(t, direct, "SELECT COUNT(*) FROM r"); n != "1" {
		t.Errorf("%s rows in r after the reset, want 1 (the open transaction rolled back)", n)
	}
	if v := fresh.queryValue(t, "SELECT GET_LOCK('rst_lock', 5)"); deref(v) != "1" {
		t.Errorf("another session's GET_LOCK after the reset = %s, want 1", deref(v))
	}
	// And the connection works as a fresh one.
	if v := c.queryValue(t, "SELECT DATABASE()"); deref(v) != m.Logical {
		t.Errorf("DATABASE() after reset = %s, want %s", deref(v), m.Logical)
	}
}

func ptr(s string) *string { return &s }

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return *s
}
