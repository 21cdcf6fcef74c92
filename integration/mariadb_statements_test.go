package integration

import (
	"context"
	"strings"
	"testing"
)

// testMariaDBStatements: MariaDB-only statements the proxy's parser cannot read (CREATE OR
// REPLACE TABLE, system versioning, SELECT ... INTO @var, EXECUTE IMMEDIATE) work through the barrier with
// go-sql-driver and the mariadb CLI, checked as their parsed equivalent; SHOW PROCEDURE /
// FUNCTION STATUS list only the user's own databases, under their logical names.
func testMariaDBStatements(t *testing.T, e *env) {
	mariadb := cli{path: requireTool(t, "/usr/bin/mariadb", "mariadb-client")}
	m := dbMap{Logical: "mst", Physical: "mst_phys"}
	p := startProxy(t, e.config(t, m))
	mariadb.addr = p.Addr
	direct := e.direct(t, m.Physical)
	e.rootExec(t, "CREATE DATABASE IF NOT EXISTS mst_secret",
		"CREATE OR REPLACE PROCEDURE mst_secret.p_secret() SELECT 1",
		"CREATE OR REPLACE FUNCTION mst_secret.f_secret() RETURNS INT RETURN 1")
	mustExec(t, direct, "CREATE OR REPLACE PROCEDURE p_mine() SELECT 1",
		"CREATE OR REPLACE FUNCTION f_mine() RETURNS INT RETURN 1")
	t.Cleanup(func() { e.rootExec(t, "DROP DATABASE IF EXISTS mst_secret") })

	conn, err := p.open(t, appUser, appPass, m.Logical).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	t.Run("CreateOrReplaceTable", func(t *testing.T) {
		mustExec(t, conn, "CREATE OR REPLACE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))",
			"INSERT INTO t VALUES (9, 'old')",
			"CREATE OR REPLACE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))", // replaces: empty again
			"INSERT INTO t VALUES (1, 'a'), (2, 'b')",
			"CREATE OR REPLACE TABLE t2 AS SELECT * FROM t",
			"CREATE OR REPLACE TABLE t3 LIKE t")
		if got := queryString(t, direct, "SELECT GROUP_CONCAT(id ORDER BY id) FROM t"); got != "1,2" {
			t.Errorf("t holds %s, want 1,2", got)
		}
		if got := queryString(t, direct, "SELECT COUNT(*) FROM t2"); got != "2" {
			t.Errorf("t2 holds %s rows, want 2", got)
		}
		if got := queryString(t, direct, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mst_phys' AND TABLE_NAME = 't3'"); got != "2" {
			t.Errorf("t3 has %s columns, want 2", got)
		}
		_, err := conn.ExecContext(context.Background(), "CREATE OR REPLACE TABLE leak AS SELECT user FROM mysql.user")
		wantError(t, err, 1044, "42000")
	})
	t.Run("SystemVersioning", func(t *testing.T) {
		mustExec(t, conn, "CREATE OR REPLACE TABLE hist (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING",
			"INSERT INTO hist VALUES (1, 1)", "UPDATE hist SET v = 2 WHERE id = 1",
			"CREATE OR REPLACE TABLE later (id INT PRIMARY KEY)", "ALTER TABLE later ADD SYSTEM VERSIONING")
		if got := queryString(t, direct, "SELECT COUNT(*) FROM hist FOR SYSTEM_TIME ALL"); got != "2" {
			t.Errorf("hist keeps %s row versions, want 2", got)
		}
		q := "SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mst_phys' AND TABLE_TYPE = 'SYSTEM VERSIONED'"
		if got := queryString(t, direct, q); got != "hist,later" {
			t.Errorf("system-versioned tables: %s, want hist,later", got)
		}
		mustExec(t, conn, "ALTER TABLE later DROP SYSTEM VERSIONING")
		if got := queryString(t, direct, q); got != "hist" {
			t.Errorf("system-versioned tables after DROP SYSTEM VERSIONING: %s, want hist", got)
		}
	})
	t.Run("MariaDBColumnTypes", func(t *testing.T) {
		mustExec(t, conn, "CREATE OR REPLACE TABLE typed (id UUID NOT NULL DEFAULT UUID() PRIMARY KEY, ip INET6, ip4 INET4, note INT INVISIBLE)",
			"INSERT INTO typed (ip, ip4, note) VALUES ('::1', '10.0.0.1', 7)")
		q := "SELECT GROUP_CONCAT(COLUMN_TYPE ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mst_phys' AND TABLE_NAME = 'typed'"
		if got := queryString(t, direct, q); got != "uuid,inet6,inet4,int(11)" {
			t.Errorf("column types %s", got)
		}
		if got := queryString(t, conn, "SELECT CONCAT(ip, ' ', ip4, ' ', note) FROM typed"); got != "::1 10.0.0.1 7" {
			t.Errorf("typed row: %s", got)
		}
	})
	t.Run("Setval", func(t *testing.T) {
		mustExec(t, conn, "CREATE OR REPLACE SEQUENCE sq", "DO SETVAL(`sq`, 100, 0)")
		if got := queryString(t, conn, "SELECT NEXTVAL(sq)"); got != "100" {
			t.Errorf("NEXTVAL after SETVAL(sq, 100, 0): %s", got)
		}
	})
	t.Run("SelectInto", func(t *testing.T) {
		mustExec(t, conn, "SELECT COUNT(*), MAX(v) INTO @n, @v FROM t",
			"SELECT id FROM t WHERE v = 'a' INTO @id",
			"SELECT 'x' INTO @x")
		r := query(t, conn, "SELECT @n, @v, @id, @x")
		if got := text(r.Rows[0][0]) + text(r.Rows[0][1]) + text(r.Rows[0][2]) + text(r.Rows[0][3]); got != "2b1x" {
			t.Errorf("SELECT ... INTO gave %s, want 2b1x", got)
		}
		_, err := conn.ExecContext(context.Background(), "SELECT user INTO @u FROM mysql.user LIMIT 1")
		wantError(t, err, 1044, "42000")
	})
	t.Run("ExecuteImmediate", func(t *testing.T) {
		mustExec(t, conn, "EXECUTE IMMEDIATE 'INSERT INTO t VALUES (?, ?)' USING 3, 'c'",
			"SET @q = 'SELECT COUNT(*) FROM t WHERE id > ?', @min = 1")
		if got := queryString(t, direct, "SELECT v FROM t WHERE id = 3"); got != "c" {
			t.Errorf("EXECUTE IMMEDIATE ... USING inserted %s, want c", got)
		}
		if got := queryString(t, conn, "EXECUTE IMMEDIATE 'SELECT v FROM t WHERE id = ?' USING 2"); got != "b" {
			t.Errorf("EXECUTE IMMEDIATE SELECT: %s, want b", got)
		}
		if got := queryString(t, conn, "EXECUTE IMMEDIATE @q USING @min"); got != "2" {
			t.Errorf("EXECUTE IMMEDIATE @q USING @min: %s, want 2", got)
		}
		_, err := conn.ExecContext(context.Background(), "EXECUTE IMMEDIATE 'SELECT user FROM mysql.user'")
		wantError(t, err, 1044, "42000")
		_, err = conn.ExecContext(context.Background(), "EXECUTE IMMEDIATE CONCAT('SELECT 1', '')")
		wantError(t, err, 1235, "42000")
	})
	t.Run("ProcedureBody", func(t *testing.T) {
		// A procedure runs with its definer's privileges: the proxy's backend account (root).
		_, err := conn.ExecContext(context.Background(), "CREATE PROCEDURE leak() BEGIN SELECT user, authentication_string FROM mysql.user; END")
		wantError(t, err, 1044, "42000")
		if got := queryString(t, direct, "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_NAME = 'leak'"); got != "0" {
			t.Errorf("the procedure reading mysql.user was created")
		}
		mustExec(t, conn, "CREATE PROCEDURE counted(IN lo INT) BEGIN DECLARE n INT; SET n = (SELECT COUNT(*) FROM t WHERE id > lo); SELECT n; END")
		if got := queryString(t, conn, "CALL counted(0)"); got != "3" {
			t.Errorf("CALL counted(0): %s, want 3", got)
		}
		mustExec(t, conn, "DROP PROCEDURE counted")
	})
	t.Run("RoutineStatus", func(t *testing.T) {
		for _, tc := range []struct{ sql, want string }{
			{"SHOW PROCEDURE STATUS", "p_mine"},
			{"SHOW FUNCTION STATUS", "f_mine"},
			{"SHOW PROCEDURE STATUS LIKE 'p%'", "p_mine"},
			{"SHOW FUNCTION STATUS WHERE Db = 'mst'", "f_mine"},
		} {
			r := query(t, conn, tc.sql)
			var names []string
			for _, row := range r.Rows {
				names = append(names, text(row[0])+"."+text(row[1]))
			}
			if strings.Join(names, ",") != "mst."+tc.want || r.Columns[0] != "Db" || len(r.Columns) != 11 {
				t.Errorf("%s: columns %v, routines %v; want mst.%s only", tc.sql, r.Columns, names, tc.want)
			}
		}
	})
	t.Run("Dump", func(t *testing.T) {
		// mariadb-dump asks for every trigger's, routine's and event's definition (SHOW
		// CREATE TRIGGER | FUNCTION | PROCEDURE | EVENT) and lists routines with SHOW ...
		// STATUS WHERE Db = '...'.
		mustExec(t, direct, "CREATE OR REPLACE TRIGGER t_upper BEFORE INSERT ON t FOR EACH ROW SET NEW.v = UPPER(NEW.v)",
			"CREATE OR REPLACE EVENT e_daily ON SCHEDULE EVERY 1 DAY DO DELETE FROM t WHERE id < 0")
		dump := cli{path: requireTool(t, "/usr/bin/mariadb-dump", "mariadb-client"), addr: p.Addr}
		out, stderr, err := dump.run(t, "", "-u", appUser, "-p"+appPass, "--routines", "--events", "--skip-comments", m.Logical)
		if err != nil {
			t.Fatalf("mariadb-dump: %v\n%s", err, stderr)
		}
		for _, want := range []string{"TRIGGER t_upper BEFORE INSERT", "PROCEDURE `p_mine`", "FUNCTION `f_mine`", "EVENT `e_daily`", "CREATE TABLE `hist`"} {
			if !strings.Contains(out, want) {
				t.Errorf("the dump lacks %s:\n%s", want, out)
			}
		}
		if strings.Contains(out, "secret") || strings.Contains(out, "mst_phys") {
			t.Errorf("the dump shows other databases or physical names:\n%s", out)
		}
	})
	t.Run("CLI", func(t *testing.T) {
		app := []string{"-u", appUser, "-p" + appPass, m.Logical}
		code, stdout, stderr := cliRun(t, mariadb, app, "CREATE OR REPLACE TABLE c (a INT); INSERT INTO c VALUES (41); "+
			"SELECT a INTO @a FROM c; EXECUTE IMMEDIATE 'SELECT ? + 1' USING @a; SHOW PROCEDURE STATUS; SHOW FUNCTION STATUS")
		if code != "" || !strings.Contains(stdout, "42\n") || !strings.Contains(stdout, "mst\tp_mine\tPROCEDURE") || !strings.Contains(stdout, "mst\tf_mine\tFUNCTION") {
			t.Errorf("the CLI reported error %q:\n%s%s", code, stdout, stderr)
		}
		if strings.Contains(stdout, "secret") || strings.Contains(stdout, "mst_phys") {
			t.Errorf("other databases' routines or physical names leaked:\n%s", stdout)
		}
		code, out := cliCode(t, mariadb, app, "EXECUTE IMMEDIATE 'SELECT user FROM mysql.user'")
		if code != "1044" {
			t.Errorf("EXECUTE IMMEDIATE on mysql.user: the CLI reported %q, want 1044\n%s", code, out)
		}
	})
}
