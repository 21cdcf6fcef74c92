package planner

import (
	"testing"
	"time"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/planner/plantest"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// build is the snapshot of cfg.
func build(t *testing.T, cfg *rules.Config) *rules.Snapshot {
	t.Helper()
	snap, err := rules.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// parseStmt parses one statement with a fresh parser (the default sql_mode).
func parseStmt(t *testing.T, sql string) ast.StmtNode {
	t.Helper()
	st, err := parser.New().ParseOneStmt(sql, "", "")
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return st
}

// TestVariableShard: user variables live on the default shard of the session's database, or
// of the first database its user may use.
func TestVariableShard(t *testing.T) {
	snap := build(t, plantest.PassthroughConfig())
	cases := []struct {
		db, user string
		want     string // shard name; "" for ER_NO_DB_ERROR
	}{
		{"blog", "app", "s_blog"},
		{"crm", "shopper", "s_crm"},
		{"", "app", "s_shop"},     // the first database of the rules
		{"", "blogger", "s_blog"}, // the first one the user may use
		{"", "nobody", ""},        // no database to fall back to
		{"gone", "app", ""},       // a database the rules do not have
	}
	for _, c := range cases {
		t.Run(c.db+"/"+c.user, func(t *testing.T) {
			pl := &Planner{DB: c.db, User: c.user}
			sh, err := pl.VariableShard(snap)
			if c.want == "" {
				if e, ok := sqlerr.As(err); !ok || e.Code != sqlerr.ErNoDB {
					t.Fatalf("got %v, %v; want No database selected", sh, err)
				}
				return
			}
			if err != nil || sh.Name != c.want {
				t.Fatalf("got %v, %v; want %s", sh, err, c.want)
			}
		})
	}
}

// TestSessionValue: the values a bound route fills in come from the view alone.
func TestSessionValue(t *testing.T) {
	pl := &Planner{DB: "shop", ConnID: 42, LastInsertID: 7, Version: "10.11.7-MariaDB", Deadline: 1500 * time.Millisecond}
	cases := []struct {
		pl   *Planner
		name string
		want any
		ok   bool
	}{
		{pl, "last_insert_id", uint64(7), true},
		{pl, "database", "shop", true},
		{pl, "schema", "shop", true},
		{&Planner{}, "database", nil, true},
		{pl, "connection_id", uint64(42), true},
		{pl, "version", "10.11.7-MariaDB", true},
		{pl, VarMaxExecutionTime, uint64(1500), true},
		{pl, "row_count", nil, false}, // a diagnostic: not filled in at execution
		{pl, "found_rows", nil, false},
	}
	for _, c := range cases {
		got, ok := c.pl.SessionValue(c.name)
		if ok != c.ok || got != c.want {
			t.Errorf("SessionValue(%q) = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
	if got, ok := pl.SessionValue(VarMaxStatementTime); !ok || got == nil {
		t.Errorf("SessionValue(%q) = %v, %v", VarMaxStatementTime, got, ok)
	}
}

// TestLoadTarget: a LOAD DATA LOCAL into a sharded or broadcast table is loaded by the
// session on every shard; others (single tables, unknown databases) are planned.
func TestLoadTarget(t *testing.T) {
	snap := build(t, plantest.ShardedConfig())
	cases := []struct {
		db, sql, want string // want: the table's name, "" for nil
	}{
		{"shop", "LOAD DATA LOCAL INFILE 'f' INTO TABLE orders", "orders"},
		{"shop", "LOAD DATA LOCAL INFILE 'f' INTO TABLE currencies", "currencies"},
		{"shop", "LOAD DATA LOCAL INFILE 'f' INTO TABLE ledger", "ledger"},
		{"shop", "LOAD DATA LOCAL INFILE 'f' INTO TABLE settings", ""},
		{"shop", "LOAD DATA LOCAL INFILE 'f' INTO TABLE unlisted", ""},
		{"", "LOAD DATA LOCAL INFILE 'f' INTO TABLE shop.orders", "orders"},
		{"", "LOAD DATA LOCAL INFILE 'f' INTO TABLE orders", ""},
		{"shop", "LOAD DATA LOCAL INFILE 'f' INTO TABLE other.orders", ""},
	}
	for _, c := range cases {
		t.Run(c.db+"/"+c.sql, func(t *testing.T) {
			n := parseStmt(t, c.sql).(*ast.LoadDataStmt)
			got := (&Planner{DB: c.db, User: "app"}).LoadTarget(snap, n)
			switch {
			case c.want == "" && got != nil:
				t.Errorf("got %s, want none", got.Name)
			case c.want != "" && (got == nil || got.Name != c.want):
				t.Errorf("got %v, want %s", got, c.want)
			}
		})
	}
}

// TestStatementSplit: a read goes to a replica only under a split setting, as readRole
// allows, and only while the session keeps nothing on its backend connections.
func TestStatementSplit(t *testing.T) {
	cfg := plantest.ShardedConfig()
	cfg.Users = append(cfg.Users, rules.UserConfig{Name: "reader", PasswordHash: cfg.Users[0].PasswordHash, ReadWriteSplit: true, MaxReplicaLag: rules.Duration(2 * time.Second)})
	snap := build(t, cfg)
	on := rules.ReadSplit{Enabled: true, MaxLag: 2 * time.Second}
	read, write := "SELECT * FROM orders WHERE user_id = 7", "UPDATE orders SET a = 1 WHERE user_id = 7"
	cases := []struct {
		name      string
		pl        Planner
		sql       string
		statement rules.ReadSplit // StatementSplit
		prepared  rules.ReadSplit // PreparedSplit with ReplicaSafe's answer
	}{
		{"split read", Planner{User: "reader", DB: "shop"}, read, on, on},
		{"no split", Planner{User: "app", DB: "shop"}, read, rules.ReadSplit{}, rules.ReadSplit{}},
		{"write", Planner{User: "reader", DB: "shop"}, write, rules.ReadSplit{}, rules.ReadSplit{}},
		{"in a transaction", Planner{User: "reader", DB: "shop", InTxn: true}, read, rules.ReadSplit{}, rules.ReadSplit{}},
		{"sticky", Planner{User: "reader", DB: "shop", Sticky: true}, read, rules.ReadSplit{}, rules.ReadSplit{}},
		{"table locks", Planner{User: "reader", DB: "shop", Locked: true}, read, rules.ReadSplit{}, rules.ReadSplit{}},
		{"no database", Planner{User: "reader"}, read, on, on},
		{"primary hint", Planner{User: "reader", DB: "shop"}, "SELECT /*+ PRIMARY */ * FROM orders", rules.ReadSplit{}, rules.ReadSplit{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := parseStmt(t, c.sql)
			if got := c.pl.ReadView().StatementSplit(snap, st, c.sql); got != c.statement {
				t.Errorf("StatementSplit = %+v, want %+v", got, c.statement)
			}
			if got := c.pl.ReadView().PreparedSplit(snap, ReplicaSafe(st, c.sql)); got != c.prepared {
				t.Errorf("PreparedSplit = %+v, want %+v", got, c.prepared)
			}
		})
	}
	if got := SplitSetting(snap, "reader", "shop"); got != on {
		t.Errorf("SplitSetting = %+v, want %+v", got, on)
	}
}

// TestUnnamedInsertTable: only an INSERT ... VALUES without a column list into a sharded
// table the user may use needs its columns named.
func TestUnnamedInsertTable(t *testing.T) {
	snap := build(t, plantest.ShardedConfig())
	cases := []struct {
		db, user, sql string
		want          string // the table, "" for none
	}{
		{"shop", "app", "INSERT INTO orders VALUES (1, 2, 'x')", "orders"},
		{"shop", "app", "INSERT INTO ledger VALUES (1, 2)", "ledger"},
		{"", "app", "INSERT INTO shop.orders VALUES (1, 2, 'x')", "orders"},
		{"shop", "app", "INSERT INTO orders (id, user_id) VALUES (1, 2)", ""},
		{"shop", "app", "INSERT INTO orders SET id = 1, user_id = 2", ""},
		{"shop", "app", "INSERT INTO orders SELECT * FROM orders", ""},
		{"shop", "app", "INSERT INTO currencies VALUES ('EUR', 1)", ""},
		{"shop", "app", "INSERT INTO settings VALUES ('k', 'v')", ""},
		{"shop", "app", "INSERT INTO unlisted VALUES (1)", ""},
		{"shop", "ghost", "INSERT INTO orders VALUES (1, 2, 'x')", ""}, // no such user
		{"", "app", "INSERT INTO orders VALUES (1, 2, 'x')", ""},
	}
	for _, c := range cases {
		t.Run(c.user+"/"+c.sql, func(t *testing.T) {
			ins := parseStmt(t, c.sql).(*ast.InsertStmt)
			db, got := (&Planner{DB: c.db, User: c.user}).UnnamedInsertTable(snap, ins)
			switch {
			case c.want == "" && got != nil:
				t.Errorf("got %s, want none", got.Name)
			case c.want != "" && (got == nil || got.Name != c.want || db == nil || db.Name != "shop"):
				t.Errorf("got %v in %v, want %s in shop", got, db, c.want)
			}
		})
	}
}
