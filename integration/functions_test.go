package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// testProxyFunctions checks what the proxy answers itself: LAST_INSERT_ID(),
// CONNECTION_ID(), DATABASE(), SHOW DATABASES.
func testProxyFunctions(t *testing.T, e *env) {
	m, other := dbMap{Logical: "fn", Physical: "fn_phys"}, dbMap{Logical: "fn2", Physical: "fn2_phys"}
	cfg := e.config(t, m, other)
	cfg.Backends[0].Pool = poolConfig{MaxOpen: 2, MaxIdle: 2}
	p := startProxy(t, cfg)
	mustExec(t, e.direct(t, m.Physical),
		"CREATE TABLE parent (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))",
		"CREATE TABLE child (id BIGINT AUTO_INCREMENT PRIMARY KEY, parent_id BIGINT)",
		"CREATE TABLE seq (id BIGINT NOT NULL)", "INSERT INTO seq VALUES (1000)",
		"CREATE TABLE noauto (id INT PRIMARY KEY)")

	for _, mode := range driverModes {
		t.Run("LastInsertID"+mode.name, func(t *testing.T) {
			db := p.open(t, appUser, appPass, m.Logical, mode.params...)
			a, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			c, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if v := queryString(t, c, "SELECT LAST_INSERT_ID()"); v != "0" {
				t.Errorf("LAST_INSERT_ID() of a session that inserted nothing = %s", v)
			}
			for i := range 10 {
				res, err := a.ExecContext(context.Background(), "INSERT INTO parent (v) VALUES (?)", "a")
				if err != nil {
					t.Fatal(err)
				}
				aid, _ := res.LastInsertId()
				// Another session inserts in between, most likely on the same backend connection.
				if _, err := b.ExecContext(context.Background(), "INSERT INTO parent (v) VALUES ('b'), ('b'), ('b')"); err != nil {
					t.Fatal(err)
				}
				for _, q := range []string{"SELECT LAST_INSERT_ID()", "SELECT LAST_INSERT_ID() + 0 AS x"} {
					if v := queryString(t, a, q); v != fmt.Sprint(aid) {
						t.Fatalf("iteration %d: %s = %s, want %d", i, q, v, aid)
					}
				}
				if v := queryString(t, a, "SELECT LAST_INSERT_ID() FROM parent WHERE id = ?", aid); v != fmt.Sprint(aid) {
					t.Fatalf("iteration %d: prepared LAST_INSERT_ID() = %s, want %d", i, v, aid)
				}
				// The classic parent/child insert.
				mustExec(t, a, "INSERT INTO child (parent_id) VALUES (LAST_INSERT_ID())")
				if v := queryString(t, e.direct(t, m.Physical), "SELECT parent_id FROM child ORDER BY id DESC LIMIT 1"); v != fmt.Sprint(aid) {
					t.Fatalf("iteration %d: child.parent_id = %s, want %d", i, v, aid)
				}
			}
			// A statement prepared once answers the id of the latest insert at each execution.
			st, err := a.PrepareContext(context.Background(), "SELECT LAST_INSERT_ID() + ?")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for range 3 {
				res, err := a.ExecContext(context.Background(), "INSERT INTO parent (v) VALUES ('again')")
				if err != nil {
					t.Fatal(err)
				}
				id, _ := res.LastInsertId()
				var v int64
				if err := st.QueryRowContext(context.Background(), 0).Scan(&v); err != nil {
					t.Fatal(err)
				}
				if v != id {
					t.Errorf("prepared-once LAST_INSERT_ID() = %d, want %d", v, id)
				}
			}
			// A multi-row INSERT answers its first id; a statement generating none keeps it.
			res, err := b.ExecContext(context.Background(), "INSERT INTO parent (v) VALUES ('m1'), ('m2'), ('m3')")
			if err != nil {
				t.Fatal(err)
			}
			first, _ := res.LastInsertId()
			mustExec(t, b, fmt.Sprintf("INSERT INTO noauto VALUES (%d)", first), "UPDATE parent SET v = 'u' WHERE id = 1")
			if v := queryString(t, b, "SELECT LAST_INSERT_ID()"); v != fmt.Sprint(first) {
				t.Errorf("after a multi-row INSERT and statements generating no id: LAST_INSERT_ID() = %s, want %d", v, first)
			}
			// LAST_INSERT_ID(expr) sets it: the sequence-table idiom.
			mustExec(t, b, "UPDATE seq SET id = LAST_INSERT_ID(id + 1)")
			mustExec(t, a, "INSERT INTO parent (v) VALUES ('other session')")
			want := queryString(t, e.direct(t, m.Physical), "SELECT id FROM seq")
			if v := queryString(t, b, "SELECT LAST_INSERT_ID()"); v != want {
				t.Errorf("after UPDATE seq SET id = LAST_INSERT_ID(id + 1): LAST_INSERT_ID() = %s, want %s", v, want)
			}
		})
	}

	t.Run("IdentityVariables", func(t *testing.T) {
		// @@identity and @@last_insert_id are MySQL's synonyms of LAST_INSERT_ID().
		// One backend connection: the other session's INSERT surely runs on it too.
		one := e.config(t, m, other)
		one.Backends[0].Pool = poolConfig{MaxOpen: 1, MaxIdle: 1}
		db := startProxy(t, one).open(t, appUser, appPass, m.Logical)
		a, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		res, err := a.ExecContext(context.Background(), "INSERT INTO parent (v) VALUES ('identity')")
		if err != nil {
			t.Fatal(err)
		}
		aid, _ := res.LastInsertId()
		mustExec(t, b, "INSERT INTO parent (v) VALUES ('x'), ('y')")
		for _, q := range []string{"SELECT @@identity", "SELECT @@last_insert_id", "SELECT @@session.last_insert_id"} {
			if v := queryString(t, a, q); v != fmt.Sprint(aid) {
				t.Errorf("%s = %s, want %d (the session's last id)", q, v, aid)
			}
		}
	})

	t.Run("ConnectionID", func(t *testing.T) {
		ids := map[string]bool{}
		for range 3 {
			c := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
			for range 5 {
				if v := c.queryValue(t, "SELECT CONNECTION_ID()"); deref(v) != fmt.Sprint(c.ConnID) {
					t.Errorf("CONNECTION_ID() = %s, the handshake said %d", deref(v), c.ConnID)
				}
			}
			ids[fmt.Sprint(c.ConnID)] = true
		}
		if len(ids) != 3 {
			t.Errorf("three connections got ids %v", ids)
		}
		db := p.open(t, appUser, appPass, m.Logical)
		a, _ := db.Conn(context.Background())
		defer a.Close()
		b, _ := db.Conn(context.Background())
		defer b.Close()
		ida, idb := queryString(t, a, "SELECT CONNECTION_ID()"), queryString(t, b, "SELECT CONNECTION_ID()")
		if ida == idb {
			t.Errorf("two sessions share CONNECTION_ID() %s", ida)
		}
		for range 5 {
			if v := queryString(t, a, "SELECT CONNECTION_ID() + ?", 0); v != ida {
				t.Errorf("prepared CONNECTION_ID() = %s, want %s", v, ida)
			}
			if v := queryString(t, b, "SELECT CONNECTION_ID()"); v != idb {
				t.Errorf("CONNECTION_ID() changed to %s, want %s", v, idb)
			}
		}
	})

	t.Run("Database", func(t *testing.T) {
		db := p.open(t, sha2User, sha2Pass, "")
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, step := range []struct{ use, want string }{{"", "NULL"}, {"fn", "fn"}, {"fn2", "fn2"}} {
			if step.use != "" {
				mustExec(t, conn, "USE "+step.use)
			}
			for _, q := range []string{"SELECT DATABASE()", "SELECT SCHEMA()", "SELECT DATABASE() FROM DUAL WHERE 1 = ?"} {
				var args []any
				if strings.Contains(q, "?") {
					args = []any{1}
				}
				if v := queryString(t, conn, q, args...); v != step.want {
					t.Errorf("after USE %q: %s = %s, want %s", step.use, q, v, step.want)
				}
			}
		}
		// A statement prepared once answers the database of each execution.
		st, err := conn.PrepareContext(context.Background(), "SELECT CONCAT(DATABASE(), ?)")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		for _, db := range []string{"fn", "fn2", "fn"} {
			mustExec(t, conn, "USE "+db)
			var v string
			if err := st.QueryRowContext(context.Background(), "!").Scan(&v); err != nil {
				t.Fatal(err)
			}
			if v != db+"!" {
				t.Errorf("a statement prepared earlier, executed in %s: %s", db, v)
			}
		}
		if v := queryString(t, p.open(t, appUser, appPass, "fn", "interpolateParams=true"), "SELECT DATABASE()"); v != "fn" {
			t.Errorf("DATABASE() of a session opened on fn = %s", v)
		}
	})

	t.Run("ShowDatabases", func(t *testing.T) {
		for _, tc := range []struct {
			user, pass, sql string
			want            string
		}{
			{appUser, appPass, "SHOW DATABASES", "information_schema,fn"},
			{otherUser, otherPass, "SHOW DATABASES", "information_schema,fn2"},
			{sha2User, sha2Pass, "SHOW DATABASES", "information_schema,fn,fn2"},
			{sha2User, sha2Pass, "SHOW DATABASES LIKE 'fn%'", "fn,fn2"},
			{sha2User, sha2Pass, "SHOW DATABASES LIKE 'FN_'", "fn2"},
			{sha2User, sha2Pass, "SHOW SCHEMAS LIKE 'nothing'", ""},
		} {
			r := query(t, p.open(t, tc.user, tc.pass, ""), tc.sql)
			var names []string
			for _, row := range r.Rows {
				names = append(names, text(row[0]))
			}
			if got := strings.Join(names, ","); got != tc.want {
				t.Errorf("%s as %s: %q, want %q", tc.sql, tc.user, got, tc.want)
			}
		}
	})
}

// testPreviousStatementState checks what MySQL reports about a session's previous
// statement: SHOW WARNINGS, @@warning_count, ROW_COUNT(), FOUND_ROWS(). Through a pool,
// another session's statement (or a state replay) may run on the backend connection in
// between; the answer must still be about this session's previous statement.
func testPreviousStatementState(t *testing.T, e *env) {
	m := dbMap{Logical: "prev", Physical: "prev_phys"}
	cfg := e.config(t, m)
	cfg.Backends[0].Pool = poolConfig{MaxOpen: 1, MaxIdle: 1}
	p := startProxy(t, cfg)
	mustExec(t, e.direct(t, m.Physical), "CREATE TABLE r (id INT PRIMARY KEY, v INT)", "INSERT INTO r VALUES (1, 0), (2, 0), (3, 0)")
	for _, tc := range []struct {
		name   string
		first  string // the session's statement
		second string // what it asks about it
		want   string
	}{
		{"ShowWarnings", "SELECT 1/0", "SHOW WARNINGS", "Warning 1365 Division by 0"},
		{"WarningCount", "SELECT 1/0", "SELECT @@warning_count", "1"},
		{"RowCount", "UPDATE r SET v = v + 1", "SELECT ROW_COUNT()", "3"},
		{"FoundRows", "SELECT * FROM r WHERE id < 3", "SELECT FOUND_ROWS()", "2"},
	} {
		for _, between := range []struct{ name, sql string }{{"Alone", ""}, {"OtherSessionInBetween", "SELECT COUNT(*) FROM r"}} {
			t.Run(tc.name+"/"+between.name, func(t *testing.T) {
				// Handles of their own, closed at the end: a session left open with sticky state
				// would hold the only backend connection.
				sdb, odb := p.open(t, appUser, appPass, m.Logical), p.open(t, appUser, appPass, m.Logical)
				defer sdb.Close()
				defer odb.Close()
				conn, err := sdb.Conn(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				other, err := odb.Conn(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
				mustExec(t, conn, "SET time_zone = '+01:00'") // state that differs from the other session's
				mustExec(t, conn, tc.first)
				if between.sql != "" {
					mustExec(t, other, between.sql)
				}
				r := query(t, conn, tc.second)
				var got []string
				for _, row := range r.Rows {
					var cells []string
					for _, v := range row {
						cells = append(cells, text(v))
					}
					got = append(got, strings.Join(cells, " "))
				}
				if strings.Join(got, "; ") != tc.want {
					t.Errorf("%s after %s: %q, want %q", tc.second, tc.first, got, tc.want)
				}
			})
		}
	}
}
