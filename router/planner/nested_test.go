package planner

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/barrier"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/router/planner/plantest"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestNested: the statement of PREPARE ... FROM and SET STATEMENT ... FOR must be a data
// statement routed to one shard as it is; what the proxy must answer, route or rewrite at
// each execution is refused, and the barrier stands in front of the rest.
func TestNested(t *testing.T) {
	sharded := build(t, plantest.ShardedConfig())
	passthrough := build(t, plantest.PassthroughConfig())
	cases := []struct {
		name, db, text string
		sharded        bool
		code           uint16 // 0: routed
		shard, sql     string
	}{
		{"select", "blog", "SELECT * FROM posts WHERE id = ?", false, 0, "s_blog", "SELECT * FROM posts WHERE id = ?"},
		{"qualified", "blog", "SELECT * FROM shop.items", false, 0, "s_shop", "SELECT * FROM `shop_0`.`items`"},            // the physical name written in
		{"information_schema", "blog", "SELECT * FROM information_schema.TABLES", false, sqlerr.ErNotSupportedYet, "", ""}, // names to translate in its answer
		{"insert", "crm", "INSERT INTO contacts (name) VALUES (?)", false, 0, "s_crm", "INSERT INTO contacts (name) VALUES (?)"},
		{"show the proxy answers", "blog", "SHOW DATABASES", false, sqlerr.ErNotSupportedYet, "", ""},
		{"DDL", "blog", "DROP TABLE posts", false, sqlerr.ErUnsupportedPS, "", ""},
		{"the barrier on a non-data statement", "blog", "SET GLOBAL read_only = 1", false, sqlerr.ErSpecificAccessDenied, "", ""},
		{"the barrier on a data statement", "blog", "SELECT user FROM mysql.user", false, sqlerr.ErDBAccessDenied, "", ""},
		{"routed by its key", "shop", "SELECT * FROM orders WHERE user_id = ?", true, sqlerr.ErNotSupportedYet, "", ""},
		{"single table", "shop", "SELECT * FROM settings", true, 0, "s0", "SELECT * FROM settings"},
		{"syntax", "blog", "SELEC 1", false, sqlerr.ErParse, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := passthrough
			if c.sharded {
				snap = sharded
			}
			pl := &Planner{DB: c.db, User: "app", RestoreFlags: DefaultRestoreFlags}
			st, r, err := pl.Nested(snap, barrier.Facts{}, c.text, "PREPARE", parseOne)
			if code(err) != c.code {
				t.Fatalf("err = %v, want code %d", err, c.code)
			}
			if err != nil {
				return
			}
			if st == nil || r.Shard.Name != c.shard || r.SQL != c.sql {
				t.Errorf("got %v %s: %s; want %s: %s", st, r.Shard.Name, r.SQL, c.shard, c.sql)
			}
			if pl.Describing {
				t.Error("Nested changed the caller's Planner")
			}
		})
	}
}

// TestCheckReturning: a RETURNING clause's expressions are planned as a SELECT list: the
// barrier reads them.
func TestCheckReturning(t *testing.T) {
	snap := build(t, plantest.PassthroughConfig())
	pl := &Planner{DB: "blog", User: "app", RestoreFlags: DefaultRestoreFlags}
	for clause, want := range map[string]uint16{
		"RETURNING id, title": 0,
		"returning *":         0,
		"RETURNING (SELECT authentication_string FROM mysql.user LIMIT 1)": sqlerr.ErDBAccessDenied,
		"RETURNING LOAD_FILE('/etc/passwd')":                               sqlerr.ErSpecificAccessDenied,
		"RETURNING id FROM posts":                                          sqlerr.ErParse,
	} {
		if err := pl.CheckReturning(snap, clause, parseOne); code(err) != want {
			t.Errorf("%s: %v, want code %d", clause, err, want)
		}
	}
}

// TestDescribeBound: a statement refused for subqueries over several shards is described
// from slot 0's shard when its subqueries can be bound at each EXECUTE; others keep the
// refusal.
func TestDescribeBound(t *testing.T) {
	snap := build(t, plantest.ShardedConfig())
	pl := &Planner{DB: "shop", User: "app", RestoreFlags: DefaultRestoreFlags, Describing: true}
	refusal := errors.New("refused")
	for _, c := range []struct {
		sql     string
		refused bool
	}{
		{"SELECT * FROM orders WHERE user_id = ? AND id IN (SELECT order_id FROM order_items WHERE sku = ?)", false},
		{"DELETE FROM settings WHERE k IN (SELECT status FROM orders)", false},
		{"CALL p()", true},
		{"SHOW TABLES", true},
	} {
		st := parseStmt(t, c.sql)
		p, err := pl.DescribeBound(snap, st, refusal)
		if c.refused {
			if !errors.Is(err, refusal) || p != nil {
				t.Errorf("%s: %v, %v; want the refusal", c.sql, p, err)
			}
			continue
		}
		r, ok := plan.RouteOf(p)
		if err != nil || !ok || r.Shard.Name != "s0" {
			t.Errorf("%s: %v, %v; want a route on s0", c.sql, p, err)
		}
		if _, isSel := st.(*ast.SelectStmt); isSel && r != nil && r.SQL == "" {
			t.Errorf("%s: no SQL", c.sql)
		}
	}
}

// TestExplainText: the head of an EXPLAIN / DESCRIBE / ANALYZE of a statement is cut off and
// the statement parsed; DESCRIBE <table> and ANALYZE TABLE are not one. ExplainOf rebuilds a
// head it cannot cut off the text.
func TestExplainText(t *testing.T) {
	for _, c := range []struct {
		sql, head, text string
		analyze, ok     bool
	}{
		{"EXPLAIN SELECT 1", "EXPLAIN ", "SELECT 1", false, true},
		{"explain format=json  UPDATE t SET a = 1;", "explain format=json  ", "UPDATE t SET a = 1", false, true},
		{"EXPLAIN EXTENDED SELECT * FROM t", "EXPLAIN EXTENDED ", "SELECT * FROM t", false, true},
		{"ANALYZE DELETE FROM t WHERE a = 1", "ANALYZE ", "DELETE FROM t WHERE a = 1", true, true},
		{"DESCRIBE t", "", "", false, false},
		{"EXPLAIN SHOW TABLES", "", "", false, false},
		{"SELECT 1", "", "", false, false},
	} {
		r, ok := ExplainText(c.sql, parseOne)
		if ok != c.ok || r.Head != c.head || r.Text != c.text || r.Analyze != c.analyze || ok && r.Stmt == nil {
			t.Errorf("ExplainText(%q) = %+v, %v", c.sql, r, ok)
		}
	}
	pl := &Planner{RestoreFlags: DefaultRestoreFlags}
	text := "EXPLAIN /* why */ FORMAT=JSON SELECT a FROM t"
	e := parseStmt(t, text).(*ast.ExplainStmt)
	r, ok, err := pl.ExplainOf(e, text, parseOne)
	if err != nil || !ok || r.Head != "EXPLAIN FORMAT=JSON " || r.Text != "SELECT `a` FROM `t`" {
		t.Errorf("ExplainOf(%q) = %+v, %v, %v", text, r, ok, err)
	}
	e = parseStmt(t, "DESCRIBE t").(*ast.ExplainStmt)
	if _, ok, err := pl.ExplainOf(e, "DESCRIBE t", parseOne); ok || err != nil {
		t.Errorf("ExplainOf(DESCRIBE t) = %v, %v", ok, err)
	}
}

// TestExplainShards: EXPLAIN SHARDS shows a plan's steps, each shard's statement of an
// EXPLAIN, each shard's LOCK TABLES, and refuses the session's own statements.
func TestExplainShards(t *testing.T) {
	snap := build(t, plantest.ShardedConfig())
	pl := &Planner{DB: "shop", User: "app", RestoreFlags: DefaultRestoreFlags}
	cases := []struct {
		sql  string
		want []string // "step shard: SQL or detail"
		code uint16
	}{
		{"SELECT * FROM orders WHERE user_id = 1", []string{"route s1: SELECT * FROM orders WHERE user_id = 1"}, 0},
		{"EXPLAIN SELECT * FROM settings", []string{"route s0: EXPLAIN SELECT * FROM settings"}, 0},
		{"EXPLAIN SELECT id FROM ledger WHERE account_id IN (2, 3)", []string{"route s1: EXPLAIN (SELECT `id` FROM `ledger_0002` AS `ledger` WHERE `account_id` IN (2,3)) UNION ALL (SELECT `id` FROM `ledger_0003` AS `ledger` WHERE `account_id` IN (2,3))"}, 0},
		{"LOCK TABLES currencies READ", []string{"lock s0: LOCK TABLES `shop_s0`.`currencies` READ", "lock s1: LOCK TABLES `shop_s1`.`currencies` READ", "lock s2: LOCK TABLES `shop_s2`.`currencies` READ", "lock s3: LOCK TABLES `shop_s3`.`currencies` READ"}, 0},
		{"SET @a = 1", nil, sqlerr.ErNotSupportedYet},
		{"BEGIN", nil, sqlerr.ErNotSupportedYet},
		{"SELECT user FROM mysql.user", nil, sqlerr.ErDBAccessDenied},
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			steps, err := pl.ExplainShards(snap, parseStmt(t, c.sql), c.sql, parseOne)
			if code(err) != c.code {
				t.Fatalf("err = %v, want code %d", err, c.code)
			}
			var got []string
			for _, st := range steps {
				d := st.SQL
				if d == "" {
					d = st.Detail
				}
				got = append(got, st.Step+" "+st.Shard+": "+d)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestDescribePrepared: at PREPARE a statement is described with no parameters bound: one
// routed by its ? key gets a bound route; a scatter read is described from one shard; a
// write to every copy keeps its branches; a RETURNING clause goes back on a statement for
// one shard only.
func TestDescribePrepared(t *testing.T) {
	snap := build(t, plantest.ShardedConfig())
	pl := &Planner{DB: "shop", User: "app", RestoreFlags: DefaultRestoreFlags}
	for _, c := range []struct {
		sql, clause string
		shard       string // the route's, "" for a plan of several shards
		bound       bool
		code        uint16
	}{
		{"SELECT * FROM orders WHERE user_id = ?", "", "s0", true, 0},
		{"SELECT * FROM settings WHERE k = ?", "", "s0", false, 0},
		{"SELECT * FROM orders WHERE user_id = ? AND id IN (SELECT order_id FROM order_items WHERE sku = ?)", "", "s0", true, 0},
		{"SELECT status, COUNT(*) FROM orders GROUP BY status", "", "s0", false, 0}, // a scatter read, described from one shard
		{"UPDATE currencies SET rate = ?", "", "", false, 0},
		{"INSERT INTO orders (id, user_id) VALUES (?, ?)", "RETURNING id", "s0", true, 0},
		{"DELETE FROM orders WHERE status = ?", "RETURNING id", "", false, sqlerr.ErNotSupportedYet},
	} {
		p, err := pl.DescribePrepared(snap, parseStmt(t, c.sql), c.sql, c.clause)
		if code(err) != c.code {
			t.Errorf("%s: %v, want code %d", c.sql, err, c.code)
			continue
		}
		if err != nil {
			continue
		}
		r, single := plan.RouteOf(p)
		switch {
		case c.shard == "" && single:
			t.Errorf("%s: routed to %s, want several shards", c.sql, r.Shard.Name)
		case c.shard != "" && (!single || r.Shard.Name != c.shard || (r.Bound != nil) != c.bound):
			t.Errorf("%s: %v (bound %v), want %s (bound %v)", c.sql, p, single && r.Bound != nil, c.shard, c.bound)
		case c.clause != "" && !strings.HasSuffix(r.SQL, " "+c.clause):
			t.Errorf("%s: %s, without its clause", c.sql, r.SQL)
		}
		if pl.Describing {
			t.Fatal("DescribePrepared changed the caller's Planner")
		}
	}
}

// TestSetStatement: SET STATEMENT ... FOR sets session system variables to constants for one
// statement routed to one shard as written; what would change how the backend reads the
// statement, or what the barrier refuses, is refused.
func TestSetStatement(t *testing.T) {
	snap := build(t, plantest.PassthroughConfig())
	pl := &Planner{DB: "blog", User: "app", RestoreFlags: DefaultRestoreFlags}
	for _, c := range []struct {
		assign, text string
		want         string // "shard: SQL"
		code         uint16
	}{
		{"max_statement_time = 1", "SELECT * FROM posts", "s_blog: SET STATEMENT max_statement_time = 1 FOR SELECT * FROM posts", 0},
		{"sort_buffer_size = 1024, optimizer_switch = 'index_merge=off'", "UPDATE posts SET a = 1", "s_blog: SET STATEMENT sort_buffer_size = 1024, optimizer_switch = 'index_merge=off' FOR UPDATE posts SET a = 1", 0},
		{"@x = 1", "SELECT 1", "", sqlerr.ErParse},
		{"max_statement_time = @t", "SELECT 1", "", sqlerr.ErParse},
		{"sql_mode = 'ANSI_QUOTES'", "SELECT 1", "", sqlerr.ErNotSupportedYet},
		{"character_set_client = 'latin1'", "SELECT 1", "", sqlerr.ErNotSupportedYet},
		{"max_statement_time = 1", "SHOW DATABASES", "", sqlerr.ErNotSupportedYet},
		{"max_statement_time = 1", "SELECT * FROM mysql.user", "", sqlerr.ErDBAccessDenied},
	} {
		sp, err := pl.SetStatement(snap, barrier.Facts{}, c.assign, c.text, parseOne)
		if code(err) != c.code {
			t.Errorf("SET STATEMENT %s FOR %s: %v, want code %d", c.assign, c.text, err, c.code)
			continue
		}
		if err == nil && (sp.Stmt == nil || sp.Route.Shard.Name+": "+sp.SQL != c.want) {
			t.Errorf("SET STATEMENT %s FOR %s: %s: %s, want %s", c.assign, c.text, sp.Route.Shard.Name, sp.SQL, c.want)
		}
	}
}
