package router

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// fuzzConfigs are the golden files' rules: 0 sharded, 1 passthrough.
var fuzzConfigs = [2]func() *rules.Config{plantest.ShardedConfig, plantest.PassthroughConfig}

// goldenQueries returns every query of router/planner/testdata/*.json with the index of its rules.
func goldenQueries(f *testing.F) (queries []string, cfgs []uint8) {
	f.Helper()
	for i, file := range []string{"plan_sharded.json", "plan_passthrough.json"} {
		data, err := os.ReadFile(plantest.Fixture(file))
		if err != nil {
			f.Fatal(err)
		}
		var cases []planCase
		if err := json.Unmarshal(data, &cases); err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		for _, c := range cases {
			queries, cfgs = append(queries, c.Query), append(cfgs, uint8(i))
		}
	}
	return queries, cfgs
}

// planOrError plans every statement of query for a session of app on db (empty: none)
// under the rules cfg, with params bound when bind is set. The property of the planner:
// it never panics, and each statement gets either a plan that sends it somewhere or a
// MySQL error with a server-range code.
func planOrError(t *testing.T, cfg *rules.Config, db, query string, bind bool) {
	t.Helper()
	s, snap := newTestSession(t, cfg, "app", "")
	if db != "" {
		if err := s.useDB(snap, db); err != nil {
			t.Fatalf("USE %s: %v", db, err)
		}
	}
	stmts, err := s.parse(query)
	if err != nil {
		wantSQLError(t, query, err)
		return
	}
	for _, st := range stmts {
		var params []int64
		if bind {
			params = make([]int64, strings.Count(st.Text(), "?"))
			for i := range params {
				params[i] = int64(i*7 + 1)
			}
		}
		p, err := s.plan(snap, st, st.Text(), int64Params(params))
		if err != nil {
			wantSQLError(t, st.Text(), err)
			continue
		}
		if goesNowhere(p) {
			t.Fatalf("%q: a plan that goes nowhere: %+v", st.Text(), p)
		}
	}
}

// goesNowhere reports whether p sends nothing to any shard.
func goesNowhere(p plan.Primitive) bool {
	switch p := p.(type) {
	case *plan.Route:
		return p.Shard == nil
	case *plan.Passthrough:
		return p.Shard == nil
	case *plan.Scatter:
		return len(p.Targets) == 0
	case *plan.MultiWrite:
		return len(p.Branches) == 0
	case *plan.DDL:
		return len(p.Copies) == 0
	case *plan.Local:
		return false
	}
	return true
}

func wantSQLError(t *testing.T, query string, err error) {
	t.Helper()
	e, ok := sqlerr.As(err)
	if !ok {
		t.Fatalf("%q: error %v (%T) is not a MySQL error", query, err, err)
	}
	if e.Code < 1000 || (e.Code >= 2000 && e.Code < 3000) {
		t.Fatalf("%q: error code %d is not a server error code: %v", query, e.Code, err)
	}
}

// FuzzPlan plans arbitrary SQL text: seeded with every golden query and with statements
// of the small grammar below, then mutated as text.
func FuzzPlan(f *testing.F) {
	queries, cfgs := goldenQueries(f)
	for i, q := range queries {
		f.Add(q, cfgs[i], uint8(i))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 64 {
		f.Add(genStatement(rng), uint8(0), uint8(i))
	}
	f.Fuzz(func(t *testing.T, query string, cfg, flags uint8) {
		if len(query) > 4096 {
			return // the parser's time grows with the text; long texts find nothing new
		}
		db := []string{"shop", "", "blog", "crm"}[flags%4]
		if cfg%2 == 0 && db != "" {
			db = "shop"
		}
		planOrError(t, fuzzConfigs[cfg%2](), db, query, flags&4 != 0)
	})
}

// FuzzPlanGrammar plans statements that the grammar builds from the fuzzer's bytes (a
// seed for its choices): syntactically valid SQL over the sharded rules' tables and
// columns, so that the fuzzer spends its time in the planner rather than in the parser.
func FuzzPlanGrammar(f *testing.F) {
	for i := range uint64(16) {
		f.Add(i, i*31+7, uint8(i))
	}
	f.Fuzz(func(t *testing.T, a, b uint64, flags uint8) {
		rng := rand.New(rand.NewPCG(a, b))
		n := int(flags%3) + 1
		parts := make([]string, n)
		for i := range parts {
			parts[i] = genStatement(rng)
		}
		planOrError(t, plantest.ShardedConfig(), "shop", strings.Join(parts, "; "), flags&4 != 0)
	})
}

// The grammar: tables and columns of plantest.ShardedConfig, and expressions around them.
var (
	grammarTables = []string{"orders", "order_items", "accounts", "ledger", "events", "visits", "currencies", "settings", "nosuch", "shop.orders", "information_schema.tables"}
	grammarCols   = []string{"user_id", "account_id", "id", "visited_on", "amount", "status", "name", "*", "o.user_id", "x.id"}
	grammarValues = []string{"1", "2", "'2'", "2.0", "-1", "NULL", "?", "'2026-03-04'", "'abc '", "0x61", "18446744073709551615", "@v", "NOW()"}
	grammarAggs   = []string{"COUNT(*)", "COUNT(DISTINCT %s)", "SUM(%s)", "MIN(%s)", "MAX(%s)", "AVG(%s)", "GROUP_CONCAT(%s)", "%s"}
	grammarOps    = []string{"=", "<", ">=", "<>", "<=>", "IN", "BETWEEN", "IS NULL", "LIKE"}
)

func pickOne(rng *rand.Rand, xs []string) string { return xs[rng.IntN(len(xs))] }

func genStatement(rng *rand.Rand) string {
	switch rng.IntN(10) {
	case 0, 1, 2, 3, 4:
		return genSelect(rng, 0)
	case 5, 6:
		var vals []string
		for range rng.IntN(3) + 1 {
			vals = append(vals, fmt.Sprintf("(%s, %s, %s)", pickOne(rng, grammarValues), pickOne(rng, grammarValues), pickOne(rng, grammarValues)))
		}
		verb := pickOne(rng, []string{"INSERT INTO", "INSERT IGNORE INTO", "REPLACE INTO"})
		suffix := pickOne(rng, []string{"", " ON DUPLICATE KEY UPDATE amount = amount + 1", " ON DUPLICATE KEY UPDATE user_id = 3"})
		return fmt.Sprintf("%s %s (%s, %s, amount) VALUES %s%s", verb, pickOne(rng, grammarTables), pickOne(rng, grammarCols), pickOne(rng, grammarCols), strings.Join(vals, ", "), suffix)
	case 7:
		return fmt.Sprintf("UPDATE %s SET %s = %s%s%s", pickOne(rng, grammarTables), pickOne(rng, grammarCols), pickOne(rng, grammarValues), genWhere(rng, 0), genLimit(rng))
	case 8:
		return fmt.Sprintf("DELETE FROM %s%s%s", pickOne(rng, grammarTables), genWhere(rng, 0), genLimit(rng))
	}
	return pickOne(rng, []string{"BEGIN", "COMMIT", "ROLLBACK", "SET @v = 2", "SET autocommit = 0", "SHOW TABLES",
		"SHOW CREATE TABLE orders", "EXPLAIN " + genSelect(rng, 1), "SELECT LAST_INSERT_ID()", "USE shop", "KILL QUERY 1",
		"PREPARE s FROM 'SELECT 1'", "EXECUTE s", "CREATE TABLE t (id INT)", "ALTER TABLE orders ADD c INT", "DROP TABLE currencies",
		"TRUNCATE orders", "LOCK TABLES orders READ", "SELECT * FROM orders FOR UPDATE", "XA START 'x'", "SAVEPOINT a"})
}

func genSelect(rng *rand.Rand, depth int) string {
	var cols []string
	for range rng.IntN(3) + 1 {
		c := pickOne(rng, grammarCols)
		if c != "*" {
			c = fmt.Sprintf(pickOne(rng, grammarAggs), c)
		}
		cols = append(cols, c)
	}
	distinct := pickOne(rng, []string{"", "", "DISTINCT "})
	from := pickOne(rng, grammarTables)
	if rng.IntN(6) == 0 {
		from += " o JOIN " + pickOne(rng, grammarTables) + " x ON o.user_id = x.user_id"
	}
	if depth < 2 && rng.IntN(8) == 0 {
		from = "(" + genSelect(rng, depth+1) + ") AS d"
	}
	q := fmt.Sprintf("SELECT %s%s FROM %s%s", distinct, strings.Join(cols, ", "), from, genWhere(rng, depth))
	if rng.IntN(3) == 0 {
		q += " GROUP BY " + pickOne(rng, grammarCols[:6])
		if rng.IntN(3) == 0 {
			q += " HAVING COUNT(*) > 1"
		}
	}
	if rng.IntN(2) == 0 {
		q += " ORDER BY " + pickOne(rng, []string{"1", "id", "user_id DESC", "COUNT(*)", "amount, id DESC", "SUM(amount) DESC"})
	}
	q += genLimit(rng)
	if depth == 0 && rng.IntN(10) == 0 {
		q += " UNION " + pickOne(rng, []string{"", "ALL "}) + genSelect(rng, depth+1)
	}
	return q
}

func genWhere(rng *rand.Rand, depth int) string {
	if rng.IntN(5) == 0 {
		return ""
	}
	var conds []string
	for range rng.IntN(3) + 1 {
		col, op := pickOne(rng, grammarCols[:6]), pickOne(rng, grammarOps)
		switch op {
		case "IN":
			conds = append(conds, fmt.Sprintf("%s IN (%s, %s)", col, pickOne(rng, grammarValues), pickOne(rng, grammarValues)))
		case "BETWEEN":
			conds = append(conds, fmt.Sprintf("%s BETWEEN %s AND %s", col, pickOne(rng, grammarValues), pickOne(rng, grammarValues)))
		case "IS NULL":
			conds = append(conds, col+" IS NULL")
		default:
			conds = append(conds, fmt.Sprintf("%s %s %s", col, op, pickOne(rng, grammarValues)))
		}
	}
	if depth < 2 && rng.IntN(10) == 0 {
		conds = append(conds, "user_id IN ("+genSelect(rng, depth+1)+")")
	}
	return " WHERE " + strings.Join(conds, pickOne(rng, []string{" AND ", " OR "}))
}

func genLimit(rng *rand.Rand) string {
	return pickOne(rng, []string{"", "", " LIMIT 10", " LIMIT 5, 10", " LIMIT ?", " LIMIT 0"})
}
