package integration

import (
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// compatEnv is the sharded environment of TestCompat: the differential test's tables and
// data through a proxy over four shards, and the same rows in one reference database.
type compatEnv struct {
	se  *shardedEnv
	ref *sql.DB // one MariaDB database holding every row
	db  *sql.DB // the proxy, database shop
}

func newCompatEnv(t *testing.T, seed uint64) *compatEnv {
	t.Helper()
	se := newShardedEnv(t, scatterTables...)
	se.servers[0].Exec(t, "CREATE DATABASE ref")
	ce := &compatEnv{se: se, ref: se.servers[0].DB(t, "ref"), db: se.proxy.open(t, appUser, appPass, "shop")}
	for _, ddl := range scatterDDL {
		mustExec(t, ce.ref, ddl)
		mustExec(t, ce.db, ddl)
	}
	loadScatterData(t, ce.ref, ce.db, se.shards[:], scatterData(seed))
	return ce
}

// TestCompat checks statements applications and tools send to a sharded database, each
// against what one MariaDB holding all rows does.
func TestCompat(t *testing.T) {
	ce := newCompatEnv(t, 42)
	t.Run("Explain", func(t *testing.T) { testExplain(t, ce) })
}

// testExplain: EXPLAIN / DESCRIBE / ANALYZE of statements on sharded tables get the plans of
// the shards that run them, with logical names.
func testExplain(t *testing.T, ce *compatEnv) {
	db := ce.db
	cols := []string{"id", "select_type", "table", "type", "possible_keys", "key", "key_len", "ref", "rows", "Extra"}
	// A point query: that shard's own plan, the columns MariaDB's EXPLAIN has.
	for _, q := range []string{
		"EXPLAIN SELECT * FROM d_orders WHERE user_id = 5",
		"DESCRIBE SELECT * FROM d_orders WHERE user_id = 5",
		"explain select id from d_ledger where account_id = 3",
	} {
		res := query(t, db, q)
		if !slices.Equal(res.Columns, cols) || len(res.Rows) != 1 {
			t.Fatalf("%s: columns %q, %d rows; want MariaDB's EXPLAIN columns and one row", q, res.Columns, len(res.Rows))
		}
		if tbl := text(res.Rows[0][2]); tbl != "d_orders" && tbl != "d_ledger" {
			t.Errorf("%s: table %q, want the logical name", q, tbl)
		}
	}
	// A DELETE names its slot table without an alias: the answer names the logical table.
	res := query(t, db, "EXPLAIN DELETE FROM d_ledger WHERE account_id = 3")
	if len(res.Rows) != 1 || text(res.Rows[0][2]) != "d_ledger" {
		t.Errorf("EXPLAIN DELETE on a table per slot: %v, want table d_ledger", res.Rows)
	}
	// FORMAT=JSON: one JSON document naming logical tables.
	js := queryString(t, db, "EXPLAIN FORMAT=JSON DELETE FROM d_ledger WHERE account_id = 3")
	var doc map[string]any
	if err := json.Unmarshal([]byte(js), &doc); err != nil || !strings.Contains(js, `"table_name": "d_ledger"`) || strings.Contains(js, "d_ledger_0") {
		t.Errorf("EXPLAIN FORMAT=JSON: %v\n%s", err, js)
	}
	// MariaDB's ANALYZE runs the statement and adds r_rows.
	res = query(t, db, "ANALYZE SELECT * FROM d_orders WHERE user_id = 5")
	if !slices.Contains(res.Columns, "r_rows") || len(res.Rows) != 1 {
		t.Errorf("ANALYZE: columns %q, rows %v", res.Columns, res.Rows)
	}
	// EXPLAIN EXTENDED, which the parser does not know, reaches the shard.
	res = query(t, db, "EXPLAIN EXTENDED SELECT * FROM d_orders WHERE user_id = 5")
	if !slices.Contains(res.Columns, "filtered") {
		t.Errorf("EXPLAIN EXTENDED: columns %q", res.Columns)
	}
	// A scatter query: every shard's plan, labelled by a first column shard.
	for _, q := range []string{
		"EXPLAIN SELECT status, COUNT(*) FROM d_orders GROUP BY status",
		"ANALYZE SELECT status, COUNT(*) FROM d_orders GROUP BY status",
		"EXPLAIN SELECT id, amount FROM d_ledger ORDER BY id LIMIT 3",
	} {
		res := query(t, db, q)
		if len(res.Columns) < 2 || res.Columns[0] != "shard" || res.Columns[1] != "id" {
			t.Fatalf("%s: columns %q", q, res.Columns)
		}
		var shards []string
		for _, r := range res.Rows {
			if s := text(r[0]); !slices.Contains(shards, s) {
				shards = append(shards, s)
			}
			if tbl := text(r[3]); strings.Contains(tbl, "d_ledger_") {
				t.Errorf("%s: physical table %q in %v", q, tbl, r)
			}
		}
		if !slices.Equal(shards, []string{"s0", "s1", "s2", "s3"}) {
			t.Errorf("%s: plans of shards %q, want s0..s3", q, shards)
		}
	}
	res = query(t, db, "EXPLAIN FORMAT=JSON SELECT * FROM d_orders WHERE user_id IN (1, 2, 3, 4, 5, 6, 7, 8)")
	if len(res.Rows) != 4 || !slices.Equal(res.Columns, []string{"shard", "EXPLAIN"}) {
		t.Errorf("EXPLAIN FORMAT=JSON of a scatter query: columns %q, %d rows", res.Columns, len(res.Rows))
	}
	// A write spanning shards: EXPLAIN asks each; ANALYZE (which would run it outside its
	// atomic commit) is refused with that reason, and nothing changed.
	res = query(t, db, "EXPLAIN UPDATE d_orders SET note = 'x' WHERE user_id IN (1, 2, 3, 4, 5, 6, 7, 8)")
	if len(res.Rows) < 2 || res.Columns[0] != "shard" {
		t.Errorf("EXPLAIN of a multi-shard UPDATE: %q %v", res.Columns, res.Rows)
	}
	_, err := tryQuery(db, "ANALYZE UPDATE d_orders SET note = 'x' WHERE user_id IN (1, 2, 3, 4, 5, 6, 7, 8)")
	wantError(t, err, 1235, "42000")
	if err == nil || !strings.Contains(err.Error(), "ANALYZE of a write spanning shards") {
		t.Errorf("ANALYZE of a multi-shard write: %v", err)
	}
	if n := queryString(t, db, "SELECT COUNT(*) FROM d_orders WHERE note = 'x'"); n != "0" {
		t.Errorf("%s rows changed by a refused ANALYZE", n)
	}
	// A refused statement's EXPLAIN gives the statement's own reason.
	_, err = tryQuery(db, "EXPLAIN SELECT * FROM d_orders WHERE user_id = 5 AND id IN (SELECT order_id FROM d_items)")
	if err == nil || strings.Contains(err.Error(), "EXPLAIN") {
		t.Errorf("EXPLAIN of a refused statement: %v", err)
	}
	// As MariaDB: EXPLAIN ANALYZE is MySQL's syntax, and MariaDB's parser refuses it.
	_, err = tryQuery(db, "EXPLAIN ANALYZE SELECT * FROM d_orders WHERE user_id = 5")
	wantError(t, err, 1064, "42000")
	if got := queryString(t, db, "SELECT COUNT(*) FROM d_orders WHERE user_id = 5"); got != queryString(t, ce.ref, "SELECT COUNT(*) FROM d_orders WHERE user_id = 5") {
		t.Errorf("connection after EXPLAIN: count %s", got)
	}
}
