package planner

import (
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestMariaDBShapes: the MariaDB-only statements the parser cannot read are planned through
// a statement it reads, and sent with the MariaDB parts put back: to one shard (shard: SQL),
// or as DDL to every physical table (ddl: each copy's SQL); what cannot keep its shape, or
// would need rewriting where the text must go as written, is refused.
func TestMariaDBShapes(t *testing.T) {
	passthrough := build(t, plantest.PassthroughConfig())
	sharded := build(t, plantest.ShardedConfig())
	type shape func(*Planner, *rules.Snapshot, string, ParseFunc) (ShapePlan, bool, error)
	ddl, types, into, show, setval := (*Planner).MariaDBDDL, (*Planner).ColumnTypes, (*Planner).SelectInto, (*Planner).ShowCreateRoutine, (*Planner).Setval
	cases := []struct {
		name  string
		shape shape
		db    string // blog: passthrough rules; shop: sharded
		sql   string
		want  string // "shard: SQL", "ddl: SQL | SQL ...", "-" for not this shape
		code  uint16
	}{
		{"create or replace", ddl, "blog", "CREATE OR REPLACE TABLE t (a INT)", "s_blog: CREATE OR REPLACE TABLE t (a INT)", 0},
		{"create or replace qualified", ddl, "blog", "CREATE OR REPLACE TABLE shop.t (a INT)", "s_shop: CREATE OR REPLACE TABLE `shop_0`.`t` (`a` INT)", 0},
		{"system versioning", ddl, "blog", "CREATE TABLE t (a INT) WITH SYSTEM VERSIONING", "s_blog: CREATE TABLE t (a INT) WITH SYSTEM VERSIONING", 0},
		{"add system versioning", ddl, "blog", "ALTER TABLE t ADD SYSTEM VERSIONING", "s_blog: ALTER TABLE t ADD SYSTEM VERSIONING", 0},
		{"versioning beside AS SELECT", ddl, "blog", "CREATE TABLE t (a INT) AS SELECT 1 AS a WITH SYSTEM VERSIONING", "", sqlerr.ErNotSupportedYet},
		{"fanned out", ddl, "shop", "CREATE OR REPLACE TABLE orders (id INT, user_id INT)", "ddl: s0: CREATE OR REPLACE TABLE `orders` (`id` INT,`user_id` INT) | s1: CREATE OR REPLACE TABLE `orders` (`id` INT,`user_id` INT) | s2: CREATE OR REPLACE TABLE `orders` (`id` INT,`user_id` INT) | s3: CREATE OR REPLACE TABLE `orders` (`id` INT,`user_id` INT)", 0},
		{"fanned out AS SELECT", ddl, "shop", "CREATE OR REPLACE TABLE orders AS SELECT 1 AS id", "", sqlerr.ErNotSupportedYet},
		{"plain DDL", ddl, "blog", "CREATE TABLE t (a INT)", "-", 0},
		{"the barrier", ddl, "blog", "CREATE OR REPLACE TABLE mysql.user (a INT)", "", sqlerr.ErDBAccessDenied},

		{"column types", types, "blog", "CREATE TABLE t (id UUID, ip INET6 INVISIBLE)", "s_blog: CREATE TABLE t (id UUID, ip INET6 INVISIBLE)", 0},
		{"column types on a sharded table", types, "shop", "CREATE TABLE orders (id UUID)", "", sqlerr.ErNotSupportedYet},
		{"column types renamed", types, "blog", "CREATE TABLE shop.t (id UUID)", "", sqlerr.ErNotSupportedYet},
		{"no MariaDB types", types, "blog", "CREATE TABLE t (id INT)", "-", 0},

		{"select into", into, "blog", "SELECT title FROM posts WHERE id = 1 INTO @t", "s_blog: SELECT title FROM posts WHERE id = 1 INTO @t", 0},
		{"select into, the clause first", into, "blog", "SELECT title INTO @t FROM posts", "s_blog: SELECT title FROM posts INTO @t", 0},
		{"select into off the variables' shard", into, "shop", "SELECT id FROM orders WHERE user_id = 1 INTO @a", "", sqlerr.ErNotSupportedYet},
		{"select into over several shards", into, "shop", "SELECT id FROM orders INTO @a", "", sqlerr.ErNotSupportedYet},
		{"select into a file", into, "blog", "SELECT 1 INTO OUTFILE '/tmp/x'", "-", 0},

		{"show create trigger", show, "blog", "SHOW CREATE TRIGGER tr", "s_blog: SHOW CREATE TRIGGER tr", 0},
		{"show create event qualified", show, "blog", "SHOW CREATE EVENT shop.e", "s_shop: SHOW CREATE EVENT `shop_0`.`e`", 0},
		{"show create table", show, "blog", "SHOW CREATE TABLE t", "-", 0},

		{"setval", setval, "blog", "DO SETVAL(s, 10, 0);", "s_blog: DO SETVAL(s, 10, 0)", 0},
		{"setval renamed", setval, "blog", "SELECT SETVAL(shop.s, 1, 1)", "", sqlerr.ErNotSupportedYet},
		{"setval of two", setval, "blog", "SELECT SETVAL(s, 1)", "-", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := passthrough
			if c.db == "shop" {
				snap = sharded
			}
			pl := &Planner{DB: c.db, User: "app", RestoreFlags: DefaultRestoreFlags}
			sp, ok, err := c.shape(pl, snap, c.sql, parseOne)
			if !ok {
				if c.want != "-" {
					t.Fatalf("not read as its shape")
				}
				return
			}
			if code(err) != c.code {
				t.Fatalf("err = %v, want code %d", err, c.code)
			}
			if err != nil {
				return
			}
			got := ""
			switch {
			case sp.DDL != nil:
				var copies []string
				for _, d := range sp.DDL.Copies {
					copies = append(copies, d.Shard.Name+": "+d.SQL)
				}
				got = "ddl: " + strings.Join(copies, " | ")
			case sp.Route != nil:
				got = sp.Route.Shard.Name + ": " + sp.SQL
			}
			if got != c.want || sp.Stmt == nil {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// TestPackageStatus: SHOW PACKAGE [BODY] STATUS is read as SHOW PROCEDURE STATUS and answered
// from information_schema.ROUTINES for its kind of routine.
func TestPackageStatus(t *testing.T) {
	for _, c := range []struct {
		sql, kind string
		ok        bool
		code      uint16
	}{
		{"SHOW PACKAGE STATUS", "'PACKAGE'", true, 0},
		{"show package body status like 'p%'", "'PACKAGE BODY'", true, 0},
		{"SHOW PACKAGE STATUS WHERE Db = 'shop'", "'PACKAGE'", true, 0},
		{"SHOW PACKAGE STATUS LIKE", "", true, sqlerr.ErParse},
		{"SHOW PROCEDURE STATUS", "", false, 0},
	} {
		st, sel, ok, err := PackageStatus(c.sql, parseOne)
		if ok != c.ok || code(err) != c.code {
			t.Errorf("%s: ok %v, err %v", c.sql, ok, err)
			continue
		}
		if !ok || err != nil {
			continue
		}
		text, rerr := RestoreSQL(DefaultRestoreFlags, nil, sel)
		if st == nil || rerr != nil || !strings.Contains(text, "ROUTINES") || !strings.Contains(text, c.kind) {
			t.Errorf("%s: %s, %v", c.sql, text, rerr)
		}
	}
}
