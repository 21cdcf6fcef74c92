package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// sessionVars is what a session reads back of its state.
const sessionVarsQuery = "SELECT @@character_set_client, @@character_set_results, @@collation_connection, " +
	"@@sql_mode, @@time_zone, @@tx_isolation, @@transaction_isolation, CHAR_LENGTH('é'), " +
	"TIME_FORMAT(TIMEDIFF(NOW(), UTC_TIMESTAMP()), '%H:%i')"

// testSessionState runs sessions with different session variables concurrently over a pool
// of two backend connections: each must see its own state on every statement, whichever
// backend connection serves it.
func testSessionState(t *testing.T, e *env) {
	m := dbMap{Logical: "sess", Physical: "sess_phys"}
	cfg := e.config(t, m)
	e.backendUser(t, cfg, "px_session")
	cfg.Backends[0].Pool = poolConfig{MaxOpen: 2, MaxIdle: 2}
	p := startProxy(t, cfg)
	mustExec(t, e.direct(t, m.Physical), "CREATE TABLE st (id INT PRIMARY KEY, v VARCHAR(50))", "INSERT INTO st VALUES (1, 'one'), (2, 'two')")

	db := p.open(t, appUser, appPass, m.Logical)
	defaults := query(t, db, sessionVarsQuery).Rows[0]
	if text(defaults[7]) != "1" {
		t.Fatalf("default session: CHAR_LENGTH('é') = %s, want 1", text(defaults[7]))
	}
	type session struct {
		name  string
		setup []string
		want  []string // nil entries: the default
	}
	sessions := []session{
		{"Latin1AnsiPlus5ReadCommitted", []string{
			"SET NAMES latin1", "SET sql_mode = 'ANSI_QUOTES'", "SET time_zone = '+05:00'",
			"SET SESSION transaction_isolation = 'READ-COMMITTED'",
		}, []string{"latin1", "latin1", "latin1_swedish_ci", "ANSI_QUOTES", "+05:00", "READ-COMMITTED", "READ-COMMITTED", "2", "05:00"}},
		{"Utf8BinMinus0330Serializable", []string{
			"SET NAMES utf8 COLLATE utf8_bin", "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES'",
			"SET @@session.time_zone = '-03:30'", "SET SESSION tx_isolation = 'SERIALIZABLE'",
		}, []string{"utf8mb3", "utf8mb3", "utf8mb3_bin", "NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES", "-03:30", "SERIALIZABLE", "SERIALIZABLE", "1", "-03:30"}},
		{"DefaultsA", nil, make([]string, 9)},
		{"DefaultsB", nil, make([]string, 9)},
	}
	for _, s := range sessions {
		for i, w := range s.want {
			if w == "" {
				s.want[i] = text(defaults[i])
			}
		}
	}

	run := func(s session, mode []string, iterations int) error {
		sdb := p.open(t, appUser, appPass, m.Logical, mode...)
		conn, err := sdb.Conn(context.Background())
		if err != nil {
			return err
		}
		defer conn.Close()
		for _, q := range s.setup {
			if _, err := conn.ExecContext(context.Background(), q); err != nil {
				return fmt.Errorf("%s: %q: %w", s.name, q, err)
			}
		}
		for i := range iterations {
			var r result
			var err error
			switch i % 3 {
			case 0:
				r, err = tryQuery(conn, sessionVarsQuery)
			case 1: // with arguments: a prepared statement unless interpolated
				r, err = tryQuery(conn, strings.Replace(sessionVarsQuery, "'é'", "?", 1)+", ? AS i", "é", i)
			case 2: // other work in between
				if _, err = conn.ExecContext(context.Background(), "UPDATE st SET v = ? WHERE id = 2", s.name); err != nil {
					break
				}
				r, err = tryQuery(conn, sessionVarsQuery)
			}
			if err != nil {
				return fmt.Errorf("%s iteration %d: %w", s.name, i, err)
			}
			for j, w := range s.want {
				if g := text(r.Rows[0][j]); g != w {
					return fmt.Errorf("%s iteration %d: %s = %q, want %q", s.name, i, r.Columns[j], g, w)
				}
			}
		}
		return nil
	}

	for _, mode := range driverModes {
		t.Run(mode.name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, len(sessions)*2)
			for round := range 2 {
				for _, s := range sessions {
					wg.Go(func() {
						if err := run(s, mode.params, 30+round); err != nil {
							errs <- err
						}
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			var n int
			if err := e.root.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'px_session'").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 2+1 { // the pool's 2 and the reserve for KILL QUERY
				t.Errorf("%d backend connections, the pool allows 2 (and one in reserve for KILL QUERY)", n)
			}
		})
	}

	t.Run("ColumnNamesOfRewrittenVariables", func(t *testing.T) {
		r := query(t, db, "SELECT @@transaction_isolation, @@session.transaction_isolation AS iso, @@tx_isolation")
		want := []string{"@@transaction_isolation", "iso", "@@tx_isolation"}
		if strings.Join(r.Columns, "|") != strings.Join(want, "|") {
			t.Errorf("columns %q, want %q", r.Columns, want)
		}
	})

	t.Run("InvalidValueKeepsState", func(t *testing.T) {
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		mustExec(t, conn, "SET time_zone = '+01:00'")
		_, err = conn.ExecContext(context.Background(), "SET time_zone = 'Nowhere/Nothing'")
		wantError(t, err, 1298, "HY000")
		_, err = conn.ExecContext(context.Background(), "SET SESSION no_such_variable = 1")
		wantError(t, err, 1193, "HY000")
		if v := queryString(t, conn, "SELECT @@time_zone"); v != "+01:00" {
			t.Errorf("time_zone after failed SETs = %s, want +01:00", v)
		}
	})

	t.Run("StickyState", func(t *testing.T) {
		// State the proxy cannot replay keeps the session on its backend connection: user
		// variables, temporary tables, named locks, SQL_CALC_FOUND_ROWS, SQL-level PREPARE.
		// Other sessions meanwhile use the remaining connection of the pool.
		// Client connections of their own, closed for real at the end (sql.Conn.Close would
		// only return them to database/sql's pool, sticky state and all).
		adb, odb := p.open(t, appUser, appPass, m.Logical), p.open(t, appUser, appPass, m.Logical)
		a, err := adb.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		o, err := odb.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		others := func() {
			t.Helper()
			for range 3 {
				mustExec(t, o, "SET @x = 'other'", "SELECT SQL_CALC_FOUND_ROWS * FROM st LIMIT 0", "SELECT 1")
			}
		}
		mustExec(t, a, "SET @x = 'mine'", "SELECT @y := 41")
		others()
		if v := queryString(t, a, "SELECT CONCAT(@x, @y + 1)"); v != "mine42" {
			t.Errorf("user variables: %s, want mine42", v)
		}
		mustExec(t, a, "CREATE TEMPORARY TABLE tmp_sticky (a INT)", "INSERT INTO tmp_sticky VALUES (1), (2)")
		others()
		if v := queryString(t, a, "SELECT SUM(a) FROM tmp_sticky"); v != "3" {
			t.Errorf("temporary table: SUM = %s", v)
		}
		if v := queryString(t, a, "SELECT GET_LOCK('sticky_lock', 0)"); v != "1" {
			t.Fatalf("GET_LOCK = %s", v)
		}
		if v := queryString(t, o, "SELECT IS_FREE_LOCK('sticky_lock')"); v != "0" {
			t.Errorf("another session sees the lock free")
		}
		others()
		if v := queryString(t, a, "SELECT RELEASE_LOCK('sticky_lock')"); v != "1" {
			t.Errorf("RELEASE_LOCK by the holder = %s, want 1", v)
		}
		mustExec(t, a, "SELECT SQL_CALC_FOUND_ROWS id FROM st ORDER BY id LIMIT 1")
		others()
		if v := queryString(t, a, "SELECT FOUND_ROWS()"); v != "2" {
			t.Errorf("FOUND_ROWS() = %s, want 2", v)
		}
		mustExec(t, a, "PREPARE sq FROM 'SELECT ? * 2'", "SET @n = 21")
		others()
		if v := queryString(t, a, "EXECUTE sq USING @n"); v != "42" {
			t.Errorf("EXECUTE sq = %s, want 42", v)
		}
		mustExec(t, a, "DEALLOCATE PREPARE sq")
		// Closing the sticky sessions gives their backend connections back, reset.
		_, _ = a.Close(), o.Close()
		_, _ = adb.Close(), odb.Close()
		fresh := p.open(t, appUser, appPass, m.Logical)
		fresh.SetMaxOpenConns(2)
		for range 5 {
			if v := queryString(t, fresh, "SELECT COALESCE(@x, 'unset')"); v != "unset" {
				t.Errorf("a new session sees @x = %s of a closed session", v)
			}
		}
	})

	t.Run("HandshakeCollation", func(t *testing.T) {
		// The collation asked for in the handshake (no SET NAMES) is the session's, on every
		// backend connection it uses.
		for _, c := range []struct{ collation, charset string }{{"latin1_swedish_ci", "latin1"}, {"utf8mb4_unicode_ci", "utf8mb4"}, {"binary", "binary"}} {
			h := p.open(t, appUser, appPass, m.Logical, "collation="+c.collation)
			for i := range 3 {
				r := query(t, h, "SELECT @@character_set_client, @@character_set_results, @@collation_connection")
				got := text(r.Rows[0][0]) + " " + text(r.Rows[0][1]) + " " + text(r.Rows[0][2])
				if want := c.charset + " " + c.charset + " " + c.collation; got != want {
					t.Errorf("handshake collation %s, statement %d: %s, want %s", c.collation, i, got, want)
				}
				mustExec(t, db, "SELECT 1") // a default session in between
			}
		}
	})

	t.Run("Latin1Data", func(t *testing.T) {
		// A latin1 client sends é as the single byte 0xE9, which is not UTF-8. The proxy must
		// pass it through unchanged, also when it rewrites the statement (sess.st).
		conn, err := p.open(t, appUser, appPass, m.Logical, "charset=latin1").Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for i, q := range []string{
			"INSERT INTO st VALUES (10, 'caf\xe9')",
			"INSERT INTO sess.st VALUES (11, 'caf\xe9')",
		} {
			mustExec(t, conn, q)
			id := 10 + i
			if v := queryString(t, e.direct(t, m.Physical), "SELECT HEX(v) FROM st WHERE id = ?", id); v != "636166C3A9" {
				t.Errorf("%q stored HEX %s, want 636166C3A9 (café in utf8mb4)", q, v)
			}
			for _, sel := range []string{"SELECT v FROM st WHERE id = %d", "SELECT v FROM sess.st WHERE id = %d AND v = 'caf\xe9'"} {
				if v := queryString(t, conn, fmt.Sprintf(sel, id)); v != "caf\xe9" {
					t.Errorf("%q read back %q, want latin1 caf\\xe9", sel, v)
				}
			}
		}
	})

	t.Run("CollationReplayAfterCharsetChange", func(t *testing.T) {
		// Regression: a session that changed only its collation (utf8mb4_bin), on a backend
		// connection last used by a latin1 session, must get its collation back: the replayed
		// SET must set character sets before collation_connection.
		one := e.config(t, dbMap{Logical: "sess", Physical: "sess_phys"})
		one.Backends[0].Pool = poolConfig{MaxOpen: 1, MaxIdle: 1}
		p1 := startProxy(t, one)
		db1 := p1.open(t, appUser, appPass, m.Logical)
		latin, err := db1.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer latin.Close()
		bin, err := db1.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer bin.Close()
		mustExec(t, latin, "SET NAMES latin1")
		mustExec(t, bin, "SET NAMES utf8mb4 COLLATE utf8mb4_bin")
		for i := range 3 {
			if v := queryString(t, latin, "SELECT @@collation_connection"); v != "latin1_swedish_ci" {
				t.Errorf("round %d: latin1 session: collation_connection %s", i, v)
			}
			r := query(t, bin, "SELECT @@collation_connection, 'a' = 'A'")
			if got := text(r.Rows[0][0]) + " " + text(r.Rows[0][1]); got != "utf8mb4_bin 0" {
				t.Errorf("round %d: utf8mb4_bin session: collation_connection and 'a' = 'A' are %s, want utf8mb4_bin 0", i, got)
			}
		}
	})

	t.Run("SQLModeSyntax", func(t *testing.T) {
		// The proxy parses every statement; the session's sql_mode changes what the text
		// means. Each statement must mean through the proxy what it means on MariaDB with
		// the same sql_mode. sess.st names the table qualified, which makes the proxy
		// rewrite and restore the statement.
		for _, tc := range []struct {
			name, mode, sql string
		}{
			{"AnsiQuotesColumns", "ANSI_QUOTES", `SELECT "id", "v" FROM st WHERE "id" = 1`},
			{"AnsiQuotesQualifiedColumns", "ANSI_QUOTES", `SELECT "st"."v" FROM "st" WHERE "st"."id" = 1`},
			{"AnsiQuotesQualifiedTable", "ANSI_QUOTES", `SELECT "v" FROM "sess"."st" WHERE "id" = 1`},
			{"AnsiQuotesRewritten", "ANSI_QUOTES", `SELECT "v" FROM sess.st WHERE id = 1`},
			{"PipesAsConcat", "PIPES_AS_CONCAT", `SELECT 'a' || 'b' FROM st WHERE id = 1`},
			{"PipesAsConcatRewritten", "PIPES_AS_CONCAT", `SELECT 'a' || 'b' AS c FROM sess.st WHERE id = 1`},
			{"NoBackslashEscapes", "NO_BACKSLASH_ESCAPES", `SELECT 'C:\temp\' AS path`},
			{"NoBackslashEscapesRewritten", "NO_BACKSLASH_ESCAPES", `SELECT 'C:\xfiles\%' AS path FROM sess.st WHERE id = 1`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				conn, err := db.Conn(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				mustExec(t, conn, "SET sql_mode = '"+tc.mode+"'")
				direct := e.direct(t, m.Physical, "sql_mode=%27"+tc.mode+"%27")
				dq := strings.NewReplacer(`"sess".`, `"sess_phys".`, "sess.", "sess_phys.").Replace(tc.sql)
				want, err := tryQuery(direct, dq)
				if err != nil {
					t.Fatalf("directly: %q: %v", dq, err)
				}
				got, err := tryQuery(conn, tc.sql)
				if err != nil {
					t.Fatalf("%q with sql_mode %s: %v (MariaDB answers %q)", tc.sql, tc.mode, err, want.Rows)
				}
				sameResult(t, tc.sql, got, want)
			})
		}
	})
}
