package planner

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/planner/plantest"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// parseOne reads one statement as the session's parser does under the default sql_mode (a
// ParseFunc).
func parseOne(text string) (ast.StmtNode, error) {
	stmts, _, err := parser.New().Parse(text, "", "")
	if err != nil {
		return nil, SyntaxError(err)
	}
	if len(stmts) != 1 {
		return nil, SyntaxError(errors.New("one statement"))
	}
	return stmts[0], nil
}

// code is err's MariaDB error code, 0 for none.
func code(err error) uint16 {
	if e, ok := sqlerr.As(err); ok {
		return e.Code
	}
	if err != nil {
		return 1
	}
	return 0
}

// TestParseProgram: the statements of stored programs the parser cannot read are taken
// apart into what the backend receives (DEFINER dropped, executable comments read) and the
// program's kind and name; anything else is not one.
func TestParseProgram(t *testing.T) {
	cases := []struct {
		sql        string
		ok         bool
		code       uint16 // of the error when ok
		kind, name string
		drop       bool
		send       string
	}{
		{sql: "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = NEW.a * 2", ok: true, kind: "TRIGGER", name: "tr",
			send: "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = NEW.a * 2"},
		{sql: "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW SET NEW.a = 1 */", ok: true, kind: "TRIGGER", name: "tr",
			send: "CREATE TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW SET NEW.a = 1"},
		{sql: "CREATE OR REPLACE DEFINER = CURRENT_USER() TRIGGER tr AFTER UPDATE ON t FOR EACH ROW FOLLOWS tr0 INSERT INTO t2 VALUES (OLD.a);", ok: true, kind: "TRIGGER", name: "tr",
			send: "CREATE OR REPLACE TRIGGER tr AFTER UPDATE ON t FOR EACH ROW FOLLOWS tr0 INSERT INTO t2 VALUES (OLD.a)"},
		{sql: "CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC RETURN x * 2", ok: true, kind: "FUNCTION", name: "f",
			send: "CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC RETURN x * 2"},
		{sql: "CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO DELETE FROM t WHERE a < 0", ok: true, kind: "EVENT", name: "e",
			send: "CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO DELETE FROM t WHERE a < 0"},
		{sql: "drop event e;", ok: true, kind: "EVENT", name: "e", drop: true, send: "DROP EVENT e"},
		{sql: "/*!50003 DROP FUNCTION IF EXISTS `f` */", ok: true, kind: "FUNCTION", name: "f", drop: true, send: "DROP FUNCTION IF EXISTS `f`"},
		{sql: "ALTER FUNCTION f COMMENT 'doubles' SQL SECURITY INVOKER;", ok: true, kind: "FUNCTION", send: "ALTER FUNCTION f COMMENT 'doubles' SQL SECURITY INVOKER"},
		{sql: "ALTER DEFINER = 'root'@'%' EVENT e ON SCHEDULE EVERY 2 DAY DISABLE RENAME TO e2", ok: true, kind: "EVENT", send: "ALTER EVENT e ON SCHEDULE EVERY 2 DAY DISABLE RENAME TO e2"},
		{sql: "CREATE FUNCTION evil RETURNS STRING SONAME 'evil.so'", ok: true, code: sqlerr.ErNotSupportedYet},
		{sql: "CREATE FUNCTION mysql.f() RETURNS INT RETURN 1", ok: true, code: sqlerr.ErNotSupportedYet},
		{sql: "CREATE AGGREGATE FUNCTION f(x INT) RETURNS INT RETURN x", ok: true, code: sqlerr.ErNotSupportedYet},
		{sql: "CREATE EVENT e ON SCHEDULE AT (SELECT 1) DO DELETE FROM t", ok: true, code: sqlerr.ErNotSupportedYet},
		{sql: "CREATE TRIGGER tr ON t", ok: true, code: sqlerr.ErParse},
		{sql: "ALTER FUNCTION f RETURN 1", ok: true, code: sqlerr.ErParse},
		{sql: "CREATE TABLE t (a INT)"},
		{sql: "DROP TABLE t"},
		{sql: "ALTER TABLE t ADD b INT"},
		{sql: "SELECT 1"},
		{sql: "CREATE /*!50003 TRIGGER /*!50003 tr */ */ x"}, // nested executable comments
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			shape, ok, err := ParseProgram(c.sql)
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			if code(err) != c.code {
				t.Fatalf("err = %v, want code %d", err, c.code)
			}
			if err != nil {
				return
			}
			if shape.Kind != c.kind || shape.Drop != c.drop || shape.Send != c.send || c.name != "" && shape.Name() != c.name {
				t.Errorf("got kind %q drop %v name %q send %q; want %q %v %q %q", shape.Kind, shape.Drop, shape.Name(), shape.Send, c.kind, c.drop, c.name, c.send)
			}
		})
	}
	for sql, want := range map[string]bool{
		"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET @a = 1; END": true,
		"CREATE DEFINER=root@localhost FUNCTION f() RETURNS INT RETURN 1":         true,
		"ALTER EVENT e DO BEGIN DELETE FROM t; END":                               true,
		"ALTER FUNCTION f COMMENT 'x'":                                            false, // no body: no semicolons of its own
		"DROP TRIGGER tr":                                                         false,
		"CREATE TABLE t (a INT)":                                                  false,
	} {
		if got := IsStoredProgram(sql); got != want {
			t.Errorf("IsStoredProgram(%q) = %v, want %v", sql, got, want)
		}
	}
}

// TestProgramTargets: in a database over several shards, a program goes where it must live
// (a function on every shard, an event on the default shard, a trigger where its table's
// rows are, one copy per slot table of a table per slot, naming that slot's tables), and a
// body naming rows that are not there is refused.
func TestProgramTargets(t *testing.T) {
	snap := build(t, plantest.ShardedConfig())
	db, _ := snap.Database("shop")
	pl := &Planner{DB: "shop", User: "app", RestoreFlags: DefaultRestoreFlags}
	every := []string{"s0: X", "s1: X", "s2: X", "s3: X"}
	cases := []struct {
		name, sql string
		want      []string // "where: SQL"; X is the statement as sent
		code      uint16
		reason    string
	}{
		{"function", "CREATE FUNCTION f(x INT) RETURNS INT RETURN x * 2", every, 0, ""},
		{"function reading a broadcast table", "CREATE FUNCTION f() RETURNS INT RETURN (SELECT COUNT(*) FROM currencies)", every, 0, ""},
		{"function reading a sharded table", "CREATE FUNCTION f() RETURNS INT RETURN (SELECT COUNT(*) FROM orders)", nil, sqlerr.ErNotSupportedYet, "sharded table orders"},
		{"event", "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM settings", []string{"s0: X"}, 0, ""},
		{"alter procedure", "ALTER PROCEDURE p COMMENT 'x'", []string{"s0: X"}, 0, ""},
		{"alter function", "ALTER FUNCTION f COMMENT 'x'", every, 0, ""},
		{"drop", "DROP TRIGGER tr", every, 0, ""},
		{"trigger on a single table", "CREATE TRIGGER tr BEFORE INSERT ON settings FOR EACH ROW SET NEW.a = 1", []string{"s0: X"}, 0, ""},
		{"trigger on a broadcast table", "CREATE TRIGGER tr BEFORE INSERT ON currencies FOR EACH ROW SET NEW.a = 1", every, 0, ""},
		{"trigger on a sharded table", "CREATE TRIGGER tr BEFORE INSERT ON orders FOR EACH ROW SET NEW.a = 1",
			[]string{"s0:orders: X", "s1:orders: X", "s2:orders: X", "s3:orders: X"}, 0, ""},
		{"trigger on a sharded table writing a broadcast one", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW INSERT INTO currencies VALUES (1)", nil, sqlerr.ErNotSupportedYet, "broadcast table currencies"},
		{"session function in the body", "CREATE TRIGGER tr BEFORE INSERT ON orders FOR EACH ROW SET NEW.a = CONNECTION_ID()", nil, sqlerr.ErNotSupportedYet, "CONNECTION_ID()"},
		{"the barrier", "CREATE FUNCTION f() RETURNS TEXT RETURN (SELECT COUNT(*) FROM mysql.user)", nil, sqlerr.ErDBAccessDenied, ""},
		{"a word like a slot table", "CREATE TRIGGER tr AFTER INSERT ON accounts FOR EACH ROW UPDATE ledger SET ledger = 1 WHERE account_id = NEW.account_id", nil, sqlerr.ErNotSupportedYet, "a word spelled like one"},
		{"an unpinned slot table", "CREATE TRIGGER tr AFTER INSERT ON accounts FOR EACH ROW DELETE FROM ledger WHERE amount < 0", nil, sqlerr.ErNotSupportedYet, "table-per-slot table ledger"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			shape, ok, err := ParseProgram(c.sql)
			if !ok || err != nil {
				t.Fatalf("ParseProgram: %v, %v", ok, err)
			}
			targets, err := pl.ProgramTargets(snap, db, shape, parseOne)
			if code(err) != c.code || c.reason != "" && !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("err = %v, want code %d naming %q", err, c.code, c.reason)
			}
			var got []string
			for _, tg := range targets {
				got = append(got, tg.Where+": "+strings.ReplaceAll(tg.SQL, shape.Send, "X"))
				if !strings.HasSuffix(tg.Where, tg.Shard.Name) && !strings.HasPrefix(tg.Where, tg.Shard.Name+":") {
					t.Errorf("target %q runs on %s", tg.Where, tg.Shard.Name)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("targets\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestProgramTargetsSlotTables: a trigger on a table-per-slot table gets one copy per slot
// table, named name_SSSS on a shard's later slot tables, each naming its slot's tables.
func TestProgramTargetsSlotTables(t *testing.T) {
	snap := build(t, plantest.ShardedConfig())
	db, _ := snap.Database("shop")
	pl := &Planner{DB: "shop", User: "app", RestoreFlags: DefaultRestoreFlags}
	shape, _, _ := ParseProgram("CREATE TRIGGER tr AFTER UPDATE ON accounts FOR EACH ROW FOLLOWS tr0 BEGIN INSERT INTO ledger (account_id, amount) VALUES (NEW.account_id, 1); " +
		"UPDATE ledger SET amount = ledger.amount + 1 WHERE ledger.account_id = OLD.account_id; END")
	targets, err := pl.ProgramTargets(snap, db, shape, parseOne)
	if err != nil || len(targets) != 8 {
		t.Fatalf("%d targets, %v; want one per slot table", len(targets), err)
	}
	accounts := db.Table("accounts")
	for slot, tg := range targets {
		name, other := "`tr`", "`tr0`"
		if slot%2 == 1 {
			name, other = fmt.Sprintf("`tr_%04d`", slot), fmt.Sprintf("`tr0_%04d`", slot)
		}
		want := fmt.Sprintf("CREATE TRIGGER %s AFTER UPDATE ON `accounts_%04[3]d` FOR EACH ROW FOLLOWS %[2]s BEGIN INSERT INTO `ledger_%04[3]d` (account_id, amount) VALUES (NEW.account_id, 1); "+
			"UPDATE `ledger_%04[3]d` SET amount = `ledger_%04[3]d`.amount + 1 WHERE `ledger_%04[3]d`.account_id = OLD.account_id; END", name, other, slot)
		if tg.SQL != want || tg.Shard.Name != fmt.Sprintf("s%d", slot/2) || tg.Where != fmt.Sprintf("s%d:accounts_%04d", slot/2, slot) {
			t.Errorf("slot %d: %s %s\n got %s\nwant %s", slot, tg.Shard.Name, tg.Where, tg.SQL, want)
		}
		p := accounts.Placements()[slot]
		if got, want := SlotTriggerName("tr", accounts, p), strings.Trim(name, "`"); got != want {
			t.Errorf("SlotTriggerName(slot %d) = %s, want %s", slot, got, want)
		}
	}
}

// TestCheckProgram: in a database on one shard, the body is planned as a procedure's and must
// come back as written, and a trigger's table must be a single table of the default shard.
func TestCheckProgram(t *testing.T) {
	snap := build(t, plantest.PassthroughConfig())
	db, _ := snap.Database("blog")
	pl := &Planner{DB: "blog", User: "app", RestoreFlags: DefaultRestoreFlags}
	cases := []struct {
		sql  string
		code uint16
	}{
		{"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = NEW.a * 2", 0},
		{"CREATE FUNCTION f() RETURNS INT RETURN (SELECT MAX(t.a) FROM t)", 0},
		{"CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t WHERE a < 0", 0},
		{"ALTER FUNCTION f COMMENT 'x'", 0},
		{"DROP TRIGGER tr", 0},
		{"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = (SELECT COUNT(*) FROM mysql.user)", sqlerr.ErDBAccessDenied},
		{"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = LOAD_FILE('/etc/passwd')", sqlerr.ErSpecificAccessDenied},
		{"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW INSERT INTO blog.t2 VALUES (1)", sqlerr.ErNotSupportedYet},
		{"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW INSERT INTO invisible.secret VALUES (1)", sqlerr.ErBadDB},
		{"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN PREPARE s FROM @q; EXECUTE s; END", sqlerr.ErParse},
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			shape, ok, err := ParseProgram(c.sql)
			if !ok || err != nil {
				t.Fatalf("ParseProgram: %v, %v", ok, err)
			}
			if err := pl.CheckProgram(snap, db, shape, parseOne); code(err) != c.code {
				t.Errorf("err = %v, want code %d", err, c.code)
			}
		})
	}
}
