package integration

import (
	"testing"
)

func TestZZDump(t *testing.T) {
	e := newEnv(t)
	m := dbMap{Logical: "dmp", Physical: "dmp_phys"}
	r := dbMap{Logical: "dmr", Physical: "dmr_phys"}
	cfg := e.config(t, m, r)
	p := startProxy(t, cfg)
	direct := e.direct(t, m.Physical)
	mustExec(t, direct, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10), j JSON, u UUID, i INET6)",
		"INSERT INTO t VALUES (1, 'a', '{}', UUID(), '::1')",
		"CREATE TABLE h (id INT) WITH SYSTEM VERSIONING",
		"CREATE SEQUENCE s",
		"CREATE VIEW vw AS SELECT id, v FROM t",
		"CREATE PROCEDURE pr(IN x INT) BEGIN SELECT x; END",
		"CREATE FUNCTION fn(x INT) RETURNS INT DETERMINISTIC RETURN x + 1",
		"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.v = UPPER(NEW.v)",
		"CREATE EVENT ev ON SCHEDULE EVERY 1 DAY DO DELETE FROM t WHERE id < 0",
		"CREATE TABLE inv (a INT, b INT INVISIBLE)")
	dump := cli{path: requireTool(t, "/usr/bin/mariadb-dump", "mariadb-client"), addr: p.Addr}
	sql, stderr, _ := dump.run(t, "", "-u", sha2User, "-p"+sha2Pass, "--routines", "--triggers", "--events", "--skip-comments", m.Logical)
	t.Logf("DUMP stderr: %s\n%s", stderr, sql)
	mariadb := cli{path: requireTool(t, "/usr/bin/mariadb", "mariadb-client"), addr: p.Addr}
	out, errOut, _ := mariadb.run(t, sql, "-u", sha2User, "-p"+sha2Pass, "--force", "-v", r.Logical)
	t.Logf("RESTORE: %s\n%s", out, errOut)
}
