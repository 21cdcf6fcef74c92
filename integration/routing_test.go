package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// logEntry is one row of MariaDB's general log.
type logEntry struct {
	Thread  int64
	Command string
	SQL     string
}

// generalLog returns what user sent MariaDB since the log was last truncated, in order.
func (e *env) generalLog(t *testing.T, user string) []logEntry {
	t.Helper()
	rows, err := e.root.Query("SELECT thread_id, command_type, CONVERT(argument USING utf8mb4) FROM mysql.general_log WHERE user_host LIKE ?", user+"[%")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []logEntry
	for rows.Next() {
		var le logEntry
		if err := rows.Scan(&le.Thread, &le.Command, &le.SQL); err != nil {
			t.Fatal(err)
		}
		out = append(out, le)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// find returns the entries whose SQL contains marker.
func find(log []logEntry, marker string) []logEntry {
	var out []logEntry
	for _, le := range log {
		if strings.Contains(le.SQL, marker) {
			out = append(out, le)
		}
	}
	return out
}

// testRouting asserts what MariaDB actually received (its general log) for statements sent
// through the proxy: logical names rewritten to physical ones, proxy-answered functions
// replaced by their values, session state replayed only when it has to be.
func testRouting(t *testing.T, e *env) {
	a, b := dbMap{Logical: "routing", Physical: "routing_phys"}, dbMap{Logical: "routing2", Physical: "routing2_phys"}
	cfg := e.config(t, a, b)
	e.backendUser(t, cfg, "px_route")
	cfg.Backends[0].Pool = poolConfig{MaxOpen: 1, MaxIdle: 1}
	p := startProxy(t, cfg)
	mustExec(t, e.direct(t, a.Physical), "CREATE TABLE rt (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO rt VALUES (1, 'one')")
	mustExec(t, e.direct(t, b.Physical), "CREATE TABLE rt2 (id INT PRIMARY KEY, w VARCHAR(20))", "INSERT INTO rt2 VALUES (1, 'uno')")
	e.rootExec(t, "SET GLOBAL log_output = 'TABLE'", "TRUNCATE mysql.general_log", "SET GLOBAL general_log = 1")
	t.Cleanup(func() { e.rootExec(t, "SET GLOBAL general_log = 0", "TRUNCATE mysql.general_log") })

	db := p.open(t, nativeAll, nativePw2, a.Logical)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sessionID := queryString(t, conn, "SELECT CONNECTION_ID()")
	if v := queryString(t, conn, "SELECT v FROM routing.rt WHERE id = 1 AND 'marker-1' <> ''"); v != "one" {
		t.Errorf("qualified SELECT: %q", v)
	}
	if v := queryString(t, conn, "SELECT CONCAT(DATABASE(), '/', CONNECTION_ID(), '/marker-2')"); v != "routing/"+sessionID+"/marker-2" {
		t.Errorf("DATABASE() and CONNECTION_ID(): %q", v)
	}
	if v := queryString(t, conn, "SELECT v FROM routing.rt WHERE id = ? AND 'marker-3' <> ''", 1); v != "one" {
		t.Errorf("prepared qualified SELECT: %q", v)
	}
	mustExec(t, conn, "USE routing2")
	if v := queryString(t, conn, "SELECT w FROM rt2 WHERE 'marker-4' <> ''"); v != "uno" {
		t.Errorf("after USE routing2: %q", v)
	}
	_, err = conn.ExecContext(context.Background(), "SELECT 'marker-5' FROM routing.rt JOIN routing2.rt2 USING (id)")
	wantError(t, err, 1235, "42000")

	// Another session with a time zone of its own on the same (only) backend connection.
	other, err := p.open(t, nativeAll, nativePw2, a.Logical).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	mustExec(t, other, "SET time_zone = '+02:00'", "SELECT 'marker-6'", "SELECT 'marker-7'")
	mustExec(t, conn, "SELECT 'marker-8'", "SELECT 'marker-9'")

	log := e.generalLog(t, "px_route")
	dump := func() string {
		var b strings.Builder
		for _, le := range log {
			fmt.Fprintf(&b, "\n  %d %s %q", le.Thread, le.Command, le.SQL)
		}
		return b.String()
	}
	for _, c := range []struct {
		marker, command string
		contains        []string
		absent          []string
	}{
		{"marker-1", "Query", []string{"FROM `routing_phys`.`rt`"}, []string{"routing.rt"}},
		{"marker-2", "Query", []string{"SELECT CONCAT('routing', '/', " + sessionID + ", '/marker-2')"}, nil},
		{"marker-3", "Prepare", []string{"`routing_phys`.`rt`"}, []string{"routing.rt"}},
		{"marker-3", "Execute", []string{"`routing_phys`.`rt`"}, nil},
		{"marker-4", "Query", []string{"FROM rt2"}, nil},
	} {
		found := false
		for _, le := range find(log, c.marker) {
			if le.Command != c.command {
				continue
			}
			found = true
			for _, s := range c.contains {
				if !strings.Contains(le.SQL, s) {
					t.Errorf("%s: MariaDB received %q, which lacks %q", c.marker, le.SQL, s)
				}
			}
			for _, s := range c.absent {
				if strings.Contains(le.SQL, s) {
					t.Errorf("%s: MariaDB received %q, which contains %q", c.marker, le.SQL, s)
				}
			}
		}
		if !found {
			t.Errorf("%s: MariaDB received no %s with it; log:%s", c.marker, c.command, dump())
		}
	}
	if n := len(find(log, "marker-5")); n != 0 {
		t.Errorf("the refused cross-shard join reached MariaDB")
	}
	// USE routing2 made the backend connection switch to the physical database.
	var switched bool
	for _, le := range log[max(indexOf(log, "marker-3"), 0):max(indexOf(log, "marker-4"), 0)] {
		switched = switched || le.Command == "Init DB" && le.SQL == b.Physical
	}
	if !switched {
		t.Errorf("no Init DB %s before marker-4; log:%s", b.Physical, dump())
	}
	// Session state is replayed when the connection changes hands, and only then.
	i6, i7, i8, i9 := indexOf(log, "marker-6"), indexOf(log, "marker-7"), indexOf(log, "marker-8"), indexOf(log, "marker-9")
	if i6 < 0 || i7 < 0 || i8 < 0 || i9 < 0 {
		t.Fatalf("markers 6-9 missing from the log:%s", dump())
	}
	if !hasSet(log[i7+1:i8], "time_zone") {
		t.Errorf("no SET of time_zone between the +02:00 session and the default one; log:%s", dump())
	}
	if hasSet(log[i6+1:i7], "") || hasSet(log[i8+1:i9], "") {
		t.Errorf("a SET was sent between two statements of the same session; log:%s", dump())
	}
}

func indexOf(log []logEntry, marker string) int {
	for i, le := range log {
		if strings.Contains(le.SQL, marker) {
			return i
		}
	}
	return -1
}

func hasSet(log []logEntry, variable string) bool {
	for _, le := range log {
		if le.Command == "Query" && strings.HasPrefix(strings.ToUpper(le.SQL), "SET") && strings.Contains(le.SQL, variable) {
			return true
		}
	}
	return false
}

// testInformationSchema introspects the current database through information_schema, as
// tools and ORMs do (mariadb-dump, GORM's Migrator): WHERE table_schema = DATABASE().
func testInformationSchema(t *testing.T, e *env) {
	for _, lay := range layouts {
		t.Run(lay.name, func(t *testing.T) {
			logical := "is_" + strings.ToLower(lay.name)
			m := dbMap{Logical: logical, Physical: logical + lay.suffix}
			p := startProxy(t, e.config(t, m))
			mustExec(t, e.direct(t, m.Physical), "CREATE TABLE IF NOT EXISTS visible (id INT PRIMARY KEY, name VARCHAR(10))")
			db := p.open(t, appUser, appPass, m.Logical)
			for _, q := range []string{
				"SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()",
				"SELECT table_name FROM information_schema.tables WHERE table_schema = '" + logical + "'",
				"SELECT GROUP_CONCAT(column_name ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'visible'",
			} {
				r := query(t, db, q)
				if len(r.Rows) != 1 || (text(r.Rows[0][0]) != "visible" && text(r.Rows[0][0]) != "id,name") {
					t.Errorf("%q: %v, want the table visible or its columns", q, r.Rows)
				}
			}
		})
	}
}
