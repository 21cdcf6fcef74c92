package integration

import (
	"context"
	"strings"
	"testing"
)

// testStoredPrograms: triggers, stored functions and events are created and dropped
// through the proxy (go-sql-driver), and a mariadb-dump --routines --triggers --events of
// their database, taken through the proxy, restores through it with the mariadb CLI: the
// same definitions afterwards, and they work. Bodies reading the backend's accounts or
// files, or setting global variables, are refused and nothing is created on MariaDB.
func testStoredPrograms(t *testing.T, e *env) {
	mariadb := cli{path: requireTool(t, "/usr/bin/mariadb", "mariadb-client")}
	dump := cli{path: requireTool(t, "/usr/bin/mariadb-dump", "mariadb-client")}
	m := dbMap{Logical: "spg", Physical: "spg_phys"}
	p := startProxy(t, e.config(t, m))
	mariadb.addr, dump.addr = p.Addr, p.Addr
	direct := e.direct(t, m.Physical)
	ctx := context.Background()
	conn, err := p.open(t, appUser, appPass, m.Logical).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mustExec(t, conn, "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20), doubled INT)",
		"CREATE TABLE audit (id INT)",
		"CREATE DEFINER=`root`@`localhost` TRIGGER items_bi BEFORE INSERT ON items FOR EACH ROW BEGIN SET NEW.doubled = NEW.id * 2; INSERT INTO audit VALUES (NEW.id); END",
		"CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
		"CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM audit WHERE id < 0")
	// The DEFINER the client named is not the one MariaDB records: the proxy's account is.
	account := queryString(t, direct, "SELECT CURRENT_USER()")
	if got := queryString(t, direct, "SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_NAME = 'items_bi'"); got != account {
		t.Errorf("the trigger's DEFINER is %s, want the proxy's account %s", got, account)
	}

	show := func() []string {
		return []string{
			text(query(t, direct, "SHOW CREATE TRIGGER items_bi").Rows[0][2]),
			text(query(t, direct, "SHOW CREATE FUNCTION twice").Rows[0][2]),
			text(query(t, direct, "SHOW CREATE EVENT purge_audit").Rows[0][3]),
		}
	}
	before := show()

	out := dump.mustRun(t, "", "-u", appUser, "-p"+appPass, "--routines", "--triggers", "--events", "--skip-comments", m.Logical)
	for _, want := range []string{"TRIGGER items_bi", "FUNCTION `twice`", "EVENT `purge_audit`"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the dump lacks %s:\n%s", want, out)
		}
	}
	mustExec(t, conn, "DROP TRIGGER items_bi", "DROP FUNCTION IF EXISTS twice", "DROP EVENT purge_audit")
	if got := queryString(t, direct, "SELECT (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'spg_phys') + "+
		"(SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'spg_phys') + "+
		"(SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'spg_phys')"); got != "0" {
		t.Fatalf("%s programs left after DROP through the proxy", got)
	}
	mariadb.mustRun(t, out, "-u", appUser, "-p"+appPass, m.Logical)
	after := show()
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("restored definition differs:\nbefore: %s\nafter:  %s", before[i], after[i])
		}
	}
	if got := queryString(t, conn, "SELECT twice(21)"); got != "42" {
		t.Errorf("twice(21) after the restore: %s, want 42", got)
	}
	mustExec(t, conn, "INSERT INTO items (id, name) VALUES (5, 'five')")
	if got := queryString(t, conn, "SELECT CONCAT(doubled, '/', (SELECT COUNT(*) FROM audit WHERE id = 5)) FROM items WHERE id = 5"); got != "10/1" {
		t.Errorf("the restored trigger gave %s, want 10/1", got)
	}

	t.Run("Refused", func(t *testing.T) {
		for _, tc := range []struct {
			sql  string
			code uint16
		}{
			{"CREATE TRIGGER evil_t BEFORE INSERT ON items FOR EACH ROW SET NEW.name = (SELECT MAX(user) FROM mysql.user)", 1044},
			{"CREATE DEFINER=root@localhost TRIGGER evil_t BEFORE INSERT ON items FOR EACH ROW BEGIN SET NEW.name = LOAD_FILE('/etc/passwd'); END", 1227},
			{"CREATE FUNCTION evil_f() RETURNS TEXT RETURN (SELECT GROUP_CONCAT(authentication_string) FROM mysql.user)", 1044},
			{"CREATE FUNCTION evil_f() RETURNS TEXT BEGIN RETURN LOAD_FILE('/etc/passwd'); END", 1227},
			{"CREATE FUNCTION evil_f RETURNS STRING SONAME 'evil.so'", 1235},
			{"CREATE EVENT evil_e ON SCHEDULE AT CURRENT_TIMESTAMP DO SET GLOBAL read_only = 1", 1227},
			{"CREATE EVENT evil_e ON SCHEDULE EVERY 1 DAY DO INSERT INTO audit SELECT COUNT(*) FROM mysql.user", 1044},
		} {
			_, err := conn.ExecContext(ctx, tc.sql)
			if err == nil {
				t.Errorf("%s: allowed", tc.sql)
				continue
			}
			wantError(t, err, tc.code, "42000")
		}
		app := []string{"-u", appUser, "-p" + appPass, m.Logical}
		if code, out := cliCode(t, mariadb, app, "DELIMITER //\nCREATE TRIGGER evil_t AFTER INSERT ON items FOR EACH ROW BEGIN INSERT INTO audit SELECT COUNT(*) FROM mysql.user; END //\nDELIMITER ;\n"); code != "1044" {
			t.Errorf("the CLI reported %q, want 1044\n%s", code, out)
		}
		root := e.direct(t, "information_schema")
		if got := queryString(t, root, "SELECT (SELECT COUNT(*) FROM TRIGGERS WHERE TRIGGER_NAME = 'evil_t') + (SELECT COUNT(*) FROM ROUTINES WHERE ROUTINE_NAME = 'evil_f') + "+
			"(SELECT COUNT(*) FROM EVENTS WHERE EVENT_NAME = 'evil_e') + (SELECT COUNT(*) FROM mysql.func WHERE name = 'evil_f')"); got != "0" {
			t.Errorf("%s refused programs exist on MariaDB", got)
		}
	})
}
