package integration

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
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
	se := newShardedEnv(t, append(slices.Clone(scatterTables), auditTable)...)
	se.servers[0].Exec(t, "CREATE DATABASE ref")
	ce := &compatEnv{se: se, ref: se.servers[0].DB(t, "ref"), db: se.proxy.open(t, appUser, appPass, "shop")}
	for _, ddl := range append(slices.Clone(scatterDDL), auditDDL) {
		mustExec(t, ce.ref, ddl)
		mustExec(t, ce.db, ddl)
	}
	loadScatterData(t, ce.ref, ce.db, se.shards[:], scatterData(seed))
	// The other tables the sharded environment configures.
	mustExec(t, ce.db,
		"CREATE TABLE orders (order_id BIGINT NOT NULL, user_id BIGINT NOT NULL, total DECIMAL(10,2), PRIMARY KEY (user_id, order_id))",
		"CREATE TABLE accounts (account_id BIGINT PRIMARY KEY, owner VARCHAR(32))",
		"INSERT INTO orders (order_id, user_id, total) VALUES (1, 1, 1.50), (2, 2, NULL), (3, 3, -3), (4, 4, 0), (5, 5, 5.05)",
		"INSERT INTO accounts (account_id, owner) VALUES (1, 'a'), (2, 'b''c'), (3, NULL), (4, 'd'), (5, 'é'), (6, 'f'), (7, 'g'), (8, 'h')")
	return ce
}

// auditTable is sharded like d_orders; testShardedPrograms' triggers keep its counters.
var (
	auditTable = map[string]any{"name": "d_audit", "kind": "sharded", "key": "user_id", "scheme": "by_user"}
	auditDDL   = "CREATE TABLE d_audit (user_id BIGINT NOT NULL PRIMARY KEY, orders INT NOT NULL, total DECIMAL(12,2) NOT NULL)"
)

// TestCompat checks statements applications and tools send to a sharded database, each
// against what one MariaDB holding all rows does.
func TestCompat(t *testing.T) {
	ce := newCompatEnv(t, 42)
	t.Run("Explain", func(t *testing.T) { testExplain(t, ce) })
	t.Run("PreparedExplain", func(t *testing.T) { testPreparedExplain(t, ce) })
	t.Run("Batches", func(t *testing.T) { testBatches(t, ce) })
	t.Run("PinnedSubqueryWrite", func(t *testing.T) { testPinnedSubqueryWrite(t, ce) })
	t.Run("LockTables", func(t *testing.T) { testLockTables(t, ce) })
	t.Run("LargeStatement", func(t *testing.T) { testLargeStatement(t, ce) })
	t.Run("ShardedPrograms", func(t *testing.T) { testShardedPrograms(t, ce) })
	t.Run("Dump", func(t *testing.T) { testDump(t, ce) })
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

// compatTables are the tables of the differential data set, in a fixed order, with the
// ORDER BY that makes their contents comparable.
var compatTables = []string{"accounts", "currencies", "d_audit", "d_items", "d_ledger", "d_orders", "d_users", "orders"}

// logicalContents reads every table of the data set through q, in key order.
func logicalContents(t *testing.T, q querier) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tbl := range compatTables {
		key := "id"
		switch tbl {
		case "currencies":
			key = "code"
		case "d_users", "d_audit":
			key = "user_id"
		case "orders":
			key = "user_id, order_id"
		case "accounts":
			key = "account_id"
		}
		out[tbl] = rowStrings(query(t, q, "SELECT * FROM "+tbl+" ORDER BY "+key).Rows)
	}
	return out
}

// shardCounts is how many rows each shard holds of each table (read on the shards directly).
func shardCounts(t *testing.T, ce *compatEnv) map[string][4]string {
	t.Helper()
	out := map[string][4]string{}
	for _, tbl := range compatTables {
		var c [4]string
		for i, sh := range ce.se.shards {
			if tbl == "d_ledger" || tbl == "accounts" {
				c[i] = queryString(t, sh, fmt.Sprintf("SELECT (SELECT COUNT(*) FROM %[1]s_%04[2]d) + (SELECT COUNT(*) FROM %[1]s_%04[3]d)", tbl, 2*i, 2*i+1))
			} else {
				c[i] = queryString(t, sh, "SELECT COUNT(*) FROM "+tbl)
			}
		}
		out[tbl] = c
	}
	return out
}

// testDump: mariadb-dump of the sharded database, in its default mode (LOCK TABLES) and with
// --single-transaction, restored through the proxy into the emptied cluster, gives back the
// same logical contents with every row on its shard, and the same triggers and stored
// functions on every shard (those of testShardedPrograms when it ran first).
func testDump(t *testing.T, ce *compatEnv) {
	dump := cli{path: requireTool(t, "/usr/bin/mariadb-dump", "mariadb-client"), addr: ce.se.proxy.Addr}
	mariadb := cli{path: requireTool(t, "/usr/bin/mariadb", "mariadb-client"), addr: ce.se.proxy.Addr}
	want := logicalContents(t, ce.db)
	wantCounts := shardCounts(t, ce)
	wantPrograms := programCounts(t, ce)
	for _, opt := range []string{"--lock-tables", "--single-transaction"} {
		t.Run(strings.TrimPrefix(opt, "--"), func(t *testing.T) {
			out := dump.mustRun(t, "", "-u", appUser, "-p"+appPass, opt, "--hex-blob", "--routines", "shop")
			for _, tbl := range compatTables {
				if !strings.Contains(out, "CREATE TABLE `"+tbl+"`") || !strings.Contains(out, "INSERT INTO `"+tbl+"` VALUES") {
					t.Fatalf("the dump lacks table %s or its rows:\n%s", tbl, tail(out, 3000))
				}
			}
			if strings.Contains(out, "d_ledger_0") {
				t.Errorf("the dump names a slot table:\n%s", grepLines(out, "d_ledger_0"))
			}
			for _, tbl := range compatTables {
				mustExec(t, ce.db, "DROP TABLE "+tbl)
			}
			mariadb.mustRun(t, out, "-u", appUser, "-p"+appPass, "shop")
			got := logicalContents(t, ce.db)
			for _, tbl := range compatTables {
				if !slices.Equal(got[tbl], want[tbl]) {
					t.Errorf("table %s after the round trip: %d rows, want %d", tbl, len(got[tbl]), len(want[tbl]))
				}
			}
			if got := shardCounts(t, ce); fmt.Sprint(got) != fmt.Sprint(wantCounts) {
				t.Errorf("rows per shard after the round trip %v, want %v", got, wantCounts)
			}
			if got := programCounts(t, ce); got != wantPrograms {
				t.Errorf("triggers/functions per shard after the round trip %s, want %s", got, wantPrograms)
			}
		})
	}
}

// testLockTables: LOCK TABLES on sharded tables locks every physical copy on every shard;
// the session reads and writes them (slot tables included) while it holds the locks, and
// UNLOCK TABLES releases them everywhere.
func testLockTables(t *testing.T, ce *compatEnv) {
	conn, err := ce.db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	inUse := func() []string {
		var out []string
		for i, sh := range ce.se.shards {
			for _, r := range query(t, sh, "SHOW OPEN TABLES FROM shop WHERE In_use > 0").Rows {
				out = append(out, fmt.Sprintf("%d:%s", i, text(r[1])))
			}
		}
		slices.Sort(out)
		return out
	}
	mustExec(t, conn, "LOCK TABLES accounts WRITE, d_orders READ")
	want := []string{"0:accounts_0000", "0:accounts_0001", "0:d_orders", "1:accounts_0002", "1:accounts_0003", "1:d_orders",
		"2:accounts_0004", "2:accounts_0005", "2:d_orders", "3:accounts_0006", "3:accounts_0007", "3:d_orders"}
	if got := inUse(); !slices.Equal(got, want) {
		t.Errorf("tables in use on the shards under LOCK TABLES: %q, want %q", got, want)
	}
	for _, q := range []string{
		"SELECT owner FROM accounts WHERE account_id = 3",
		"SELECT COUNT(*) FROM accounts",
		"SELECT COUNT(*) FROM d_orders",
	} {
		if _, err := tryQuery(conn, q); err != nil {
			t.Errorf("%s under LOCK TABLES: %v", q, err)
		}
	}
	// A write spanning shards still commits atomically (the locks are released for its
	// two-phase commit and taken again).
	mustExec(t, conn, "UPDATE accounts SET owner = owner WHERE account_id IN (1, 2, 3)")
	if got := inUse(); !slices.Equal(got, want) {
		t.Errorf("tables in use after a multi-shard write under LOCK TABLES: %q, want %q", got, want)
	}
	mustExec(t, conn, "UNLOCK TABLES")
	if got := inUse(); len(got) != 0 {
		t.Errorf("tables still in use after UNLOCK TABLES: %q", got)
	}
}

// batchResults runs a multi-statement query on one connection and returns every result
// set, as rendered rows, and the error it stopped with.
func batchResults(db *sql.DB, q string) ([][]string, error) {
	rows, err := db.Query(q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]string
	for {
		var set []string
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return out, err
			}
			set = append(set, rowStrings([][]any{vals})[0])
		}
		out = append(out, set)
		if !rows.NextResultSet() {
			return out, rows.Err()
		}
	}
}

// testBatches: multi-statement queries holding a statement the parser cannot read run
// statement by statement, as on MariaDB: the same result sets, and the same error at the
// same statement (the statements before it having run).
func testBatches(t *testing.T, ce *compatEnv) {
	via := ce.se.proxy.open(t, appUser, appPass, "shop", "multiStatements=true", "parseTime=true")
	ref := ce.ref // multiStatements=true, parseTime=true
	for _, q := range []string{
		"SET STATEMENT max_statement_time = 10 FOR SELECT COUNT(*) FROM d_orders WHERE user_id = 5; SELECT COUNT(*) FROM d_orders",
		"SELECT name FROM d_users WHERE user_id = 7; SET STATEMENT max_statement_time = 10 FOR SELECT id FROM d_orders WHERE user_id = 7 ORDER BY id; SELECT 'a;b', \"c;d\" /* ; */",
		"ANALYZE SELECT COUNT(*) FROM d_orders WHERE user_id = 3; SELECT 3",
		"SELECT 1; SELEC 2; SELECT 3",
		"UPDATE d_users SET name = CONCAT(name, '!') WHERE user_id = 11; DELETE FROM d_users WHERE user_id = 12 RETURNING user_id, name; SELECT name FROM d_users WHERE user_id IN (11, 12)",
	} {
		want, wantErr := batchResults(ref, q)
		got, gotErr := batchResults(via, q)
		if strings.HasPrefix(q, "ANALYZE") {
			// The plan differs (one shard's table); the shape and the second result do not.
			if gotErr != nil || len(got) != 2 || len(got[0]) != 1 || fmt.Sprint(got[1]) != fmt.Sprint(want[1]) {
				t.Errorf("%s: %q %v, want two results like %q", q, got, gotErr, want)
			}
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%s:\n got %q, %v\nwant %q, %v", q, got, gotErr, want, wantErr)
		}
		if wantErr != nil {
			var code uint16
			fmt.Sscanf(wantErr.Error(), "Error %d", &code)
			wantError(t, gotErr, code, "42000")
		}
	}
	if got := queryString(t, via, "SELECT COUNT(*) FROM d_users"); got != queryString(t, ref, "SELECT COUNT(*) FROM d_users") {
		t.Errorf("d_users holds %s rows through the proxy after the batches", got)
	}
}

// testLargeStatement: a 7 MB statement (1,000,000 NOT IN values) runs through the proxy
// with the answer of one MariaDB, and the proxy's peak RSS while it runs (VmHWM, reset
// through /proc/<pid>/clear_refs first) grows by a small multiple of its size.
func testLargeStatement(t *testing.T, ce *compatEnv) {
	// Ten lists of 100,000: MariaDB itself takes minutes over one list of 1,000,000.
	var b strings.Builder
	b.WriteString("SELECT COUNT(*), SUM(total) FROM d_orders WHERE TRUE")
	for k := range 10 {
		b.WriteString(" AND id NOT IN (")
		for i := range 100_000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%d", 3*(k*100_000+i)+1)
		}
		b.WriteString(")")
	}
	q := b.String()
	pid := ce.se.proxy.cmd.Process.Pid
	conn, err := ce.db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mustExec(t, conn, "SELECT 1")
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatalf("resetting the proxy's peak RSS: %v", err)
	}
	before := procStatusKB(t, pid, "VmRSS")
	got, err := tryQuery(conn, q)
	if err != nil {
		t.Fatalf("the 1,000,000 NOT IN values through the proxy: %v", err)
	}
	peak := procStatusKB(t, pid, "VmHWM")
	want, err := tryQuery(ce.ref, q)
	if err != nil {
		t.Fatalf("the 1,000,000 NOT IN values on the reference: %v", err)
	}
	if diff := diffResults(want, got, true); diff != "" {
		t.Errorf("the 1,000,000 NOT IN values: %s", diff)
	}
	growth := float64(peak-before) * 1024 / float64(len(q))
	t.Logf("statement %.1f MB; proxy RSS %.1f MB before, peak %.1f MB while it ran (%.1fx the statement)",
		float64(len(q))/1e6, float64(before)/1024, float64(peak)/1024, growth)
	if growth > 8 {
		t.Errorf("the proxy's RSS grew by %.1fx the statement's size; want at most 8x", growth)
	}
}

// testPinnedSubqueryWrite: an UPDATE whose scalar subquery reads another sharded table
// pinned by the same key value runs whole on that shard, as on one MariaDB.
func testPinnedSubqueryWrite(t *testing.T, ce *compatEnv) {
	const w = "UPDATE d_orders SET total = (SELECT COALESCE(SUM(price * qty), 0) FROM d_items WHERE user_id = 25 AND order_id = d_orders.id) WHERE user_id = 25"
	want, err := ce.ref.Exec(w)
	if err != nil {
		t.Fatalf("on the reference: %v", err)
	}
	got, err := ce.db.Exec(w)
	if err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	wn, _ := want.RowsAffected()
	gn, _ := got.RowsAffected()
	if wn != gn {
		t.Errorf("%d rows affected through the proxy, %d on one database", gn, wn)
	}
	q := "SELECT id, total FROM d_orders WHERE user_id = 25 ORDER BY id"
	if diff := diffResults(query(t, ce.ref, q), query(t, ce.db, q), true); diff != "" {
		t.Errorf("after the UPDATE: %s", diff)
	}
}
