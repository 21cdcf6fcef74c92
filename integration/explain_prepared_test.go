package integration

import (
	"database/sql"
	"slices"
	"strings"
	"testing"
)

// testPreparedExplain: EXPLAIN / DESCRIBE of statements on sharded tables as prepared
// statements (go-sql-driver without interpolation: COM_STMT_PREPARE and EXECUTE) answer
// what the plain query with the same values answers: the same columns and rows (a point
// query's shard plan, a scatter query's plans labelled by shard, logical names); a refused
// statement is refused with the same reason.
func testPreparedExplain(t *testing.T, ce *compatEnv) {
	bin := ce.se.proxy.open(t, appUser, appPass, "shop", "interpolateParams=false")
	for _, tc := range []struct {
		prepared string
		args     []any
		plain    string
		labelled bool // several shards answer
	}{
		{"EXPLAIN SELECT * FROM d_orders WHERE user_id = ?", []any{5}, "EXPLAIN SELECT * FROM d_orders WHERE user_id = 5", false},
		{"DESCRIBE SELECT id, amount FROM d_ledger WHERE account_id = ? ORDER BY id", []any{3}, "DESCRIBE SELECT id, amount FROM d_ledger WHERE account_id = 3 ORDER BY id", false},
		{"EXPLAIN EXTENDED SELECT name FROM d_users WHERE user_id = ?", []any{7}, "EXPLAIN EXTENDED SELECT name FROM d_users WHERE user_id = 7", false},
		{"EXPLAIN FORMAT=JSON DELETE FROM d_ledger WHERE account_id = ?", []any{4}, "EXPLAIN FORMAT=JSON DELETE FROM d_ledger WHERE account_id = 4", false},
		{"EXPLAIN SELECT status, COUNT(*) FROM d_orders WHERE total > ? GROUP BY status", []any{10}, "EXPLAIN SELECT status, COUNT(*) FROM d_orders WHERE total > 10 GROUP BY status", true},
		{"EXPLAIN SELECT * FROM d_orders WHERE user_id IN (?, ?, ?, ?, ?, ?, ?, ?)", []any{1, 2, 3, 4, 5, 6, 7, 8},
			"EXPLAIN SELECT * FROM d_orders WHERE user_id IN (1, 2, 3, 4, 5, 6, 7, 8)", true},
		{"EXPLAIN UPDATE d_orders SET note = ? WHERE user_id IN (?, ?)", []any{"x", 1, 2}, "EXPLAIN UPDATE d_orders SET note = 'x' WHERE user_id IN (1, 2)", true},
		{"EXPLAIN SELECT o.id, c.name FROM d_orders o JOIN currencies c ON c.code = o.currency WHERE o.user_id = ? AND c.name <> ?", []any{9, "Yen"},
			"EXPLAIN SELECT o.id, c.name FROM d_orders o JOIN currencies c ON c.code = o.currency WHERE o.user_id = 9 AND c.name <> 'Yen'", false},
	} {
		want := query(t, ce.db, tc.plain)
		got, err := tryQuery(bin, tc.prepared, tc.args...)
		if err != nil {
			t.Errorf("%s %v prepared: %v", tc.prepared, tc.args, err)
			continue
		}
		if !slices.Equal(got.Columns, want.Columns) || !slices.Equal(rowStrings(got.Rows), rowStrings(want.Rows)) {
			t.Errorf("%s %v prepared:\n%q %q\nthe plain query:\n%q %q", tc.prepared, tc.args, got.Columns, rowStrings(got.Rows), want.Columns, rowStrings(want.Rows))
		}
		if labelled := len(want.Columns) > 0 && want.Columns[0] == "shard"; labelled != tc.labelled || len(want.Rows) == 0 {
			t.Errorf("%s: columns %q, %d rows; labelled by shard: %v, want %v", tc.plain, want.Columns, len(want.Rows), labelled, tc.labelled)
		}
		for _, r := range got.Rows {
			if s := strings.Join(rowStrings([][]any{r}), ""); strings.Contains(s, "d_ledger_0") {
				t.Errorf("%s: a physical table name in %s", tc.prepared, s)
			}
		}
	}
	// ANALYZE runs the statement: its plan and the r_ columns.
	got, err := tryQuery(bin, "ANALYZE SELECT * FROM d_orders WHERE user_id = ?", 5)
	if err != nil || !slices.Contains(got.Columns, "r_rows") || len(got.Rows) != 1 {
		t.Errorf("prepared ANALYZE: %v %q %v", err, got.Columns, got.Rows)
	}
	t.Run("SQLLevel", func(t *testing.T) { sqlLevelExplain(t, ce) })
	// A refused statement: the same code and reason prepared as plain.
	_, plainErr := tryQuery(ce.db, "EXPLAIN UPDATE d_orders SET user_id = 3 WHERE user_id = 1")
	_, prepErr := tryQuery(bin, "EXPLAIN UPDATE d_orders SET user_id = ? WHERE user_id = 1", 3)
	wantError(t, prepErr, 1235, "42000")
	if plainErr == nil || prepErr == nil || plainErr.Error() != prepErr.Error() {
		t.Errorf("refused statement: prepared %v, plain %v", prepErr, plainErr)
	}
}

// sqlLevelExplain: PREPARE name FROM 'EXPLAIN ...' and EXECUTE name USING @v answer as the
// plain EXPLAIN with the variables' values, as on MariaDB; DEALLOCATE forgets the statement.
func sqlLevelExplain(t *testing.T, ce *compatEnv) {
	ctx := t.Context()
	conns := map[string]*sql.Conn{}
	for name, db := range map[string]*sql.DB{"proxy": ce.db, "MariaDB": ce.ref} {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[name] = c
		mustExec(t, c, "SET @u = 5, @s = 'x', @a = 1, @b = 2, @q = 'EXPLAIN UPDATE d_orders SET note = ? WHERE user_id IN (?, ?)'",
			"PREPARE e FROM 'EXPLAIN SELECT * FROM d_orders WHERE user_id = ?'", "PREPARE e2 FROM @q")
	}
	for _, tc := range []struct{ execute, plain string }{
		{"EXECUTE e USING @u", "EXPLAIN SELECT * FROM d_orders WHERE user_id = 5"},
		{"EXECUTE e2 USING @s, @a, @b", "EXPLAIN UPDATE d_orders SET note = 'x' WHERE user_id IN (1, 2)"},
	} {
		if _, err := tryQuery(conns["MariaDB"], tc.execute); err != nil {
			t.Errorf("%s on MariaDB: %v", tc.execute, err)
		}
		want := query(t, conns["proxy"], tc.plain)
		got := query(t, conns["proxy"], tc.execute)
		if !slices.Equal(got.Columns, want.Columns) || !slices.Equal(rowStrings(got.Rows), rowStrings(want.Rows)) || len(want.Rows) == 0 {
			t.Errorf("%s:\n%q %q\nthe plain query:\n%q %q", tc.execute, got.Columns, rowStrings(got.Rows), want.Columns, rowStrings(want.Rows))
		}
	}
	mustExec(t, conns["proxy"], "DEALLOCATE PREPARE e")
	_, err := tryQuery(conns["proxy"], "EXECUTE e USING @u")
	wantError(t, err, 1243, "HY000")
	_, plainErr := tryQuery(conns["proxy"], "EXPLAIN UPDATE d_orders SET user_id = 3 WHERE user_id = 1")
	_, prepErr := tryQuery(conns["proxy"], "PREPARE e3 FROM 'EXPLAIN UPDATE d_orders SET user_id = ? WHERE user_id = 1'")
	wantError(t, prepErr, 1235, "42000")
	if plainErr == nil || prepErr == nil || plainErr.Error() != prepErr.Error() {
		t.Errorf("PREPARE of a refused statement: %v, plain %v", prepErr, plainErr)
	}
}
