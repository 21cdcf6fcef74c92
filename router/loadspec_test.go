package router

import (
	"strconv"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/infile"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestLoadFormat: a LOAD DATA's FIELDS and LINES clauses, MariaDB's defaults elsewhere.
func TestLoadFormat(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want infile.Format
	}{
		{"LOAD DATA LOCAL INFILE 'f' INTO TABLE t", infile.Default},
		{`LOAD DATA LOCAL INFILE 'f' INTO TABLE t FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '"' ESCAPED BY '' LINES STARTING BY 'x' TERMINATED BY '\r\n'`,
			infile.Format{FieldTerm: ",", Enclosed: `"`, Escaped: "", LineStart: "x", LineTerm: "\r\n"}},
		{`LOAD DATA LOCAL INFILE 'f' INTO TABLE t COLUMNS TERMINATED BY ';'`, infile.Format{FieldTerm: ";", Escaped: `\`, LineTerm: "\n"}},
		{`LOAD DATA LOCAL INFILE 'f' INTO TABLE t LINES TERMINATED BY '|'`, infile.Format{FieldTerm: "\t", Escaped: `\`, LineTerm: "|"}},
	} {
		st, err := parser.New().ParseOneStmt(tc.sql, "", "")
		if err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		if got := loadFormat(st.(*ast.LoadDataStmt)); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.sql, got, tc.want)
		}
	}
}

// TestDecodeLoadText: key bytes in MariaDB's latin1 (Windows-1252, its unassigned bytes as
// C1 controls) read as the text an INSERT would carry; UTF-8 sets pass through.
func TestDecodeLoadText(t *testing.T) {
	for _, tc := range []struct {
		cs, in, want string
	}{
		{"utf8mb4", "caf\xc3\xa9", "café"},
		{"binary", "caf\xc3\xa9", "café"},
		{"latin1", "caf\xe9", "café"},
		{"latin1", "\x80\x81\x9f\xa0\xff", "€\u0081Ÿ\u00a0ÿ"},
		{"latin1", "42", "42"},
	} {
		if got := decodeLoadText(tc.cs, []byte(tc.in)); got != tc.want {
			t.Errorf("%s %q: got %q, want %q", tc.cs, tc.in, got, tc.want)
		}
	}
}

// TestLoadSlot: a row is placed by its key as an INSERT of the field's text would be; a row
// without a slot is refused as MariaDB refuses a row of a partitioned table.
func TestLoadSlot(t *testing.T) {
	snap, err := rules.Build(plantest.ShardedConfig())
	if err != nil {
		t.Fatal(err)
	}
	db, _ := snap.Database("shop")
	orders, events, accounts := db.Table("orders"), db.Table("events"), db.Table("accounts")
	for _, tc := range []struct {
		table *rules.Table
		row   infile.Row
		want  int    // the slot, when code is 0
		code  uint16 // the error's
	}{
		{orders, infile.Row{Key: []byte("42")}, slotOf(t, orders, rules.IntValue(42)), 0},
		{orders, infile.Row{Key: []byte(" 42")}, slotOf(t, orders, rules.IntValue(42)), 0},
		{orders, infile.Row{Key: []byte("abc")}, slotOf(t, orders, rules.StrValue("abc")), 0},
		{accounts, infile.Row{Key: []byte("13")}, 5, 0},
		{orders, infile.Row{Key: []byte("N"), KeyNull: true, Line: 3}, 0, 1048},
		{orders, infile.Row{KeyMissing: true, Line: 4}, 0, 1048},
		{events, infile.Row{Key: []byte("abc"), Line: 5}, 0, 1526},
		{events, infile.Row{Key: []byte("150")}, 1, 0},
	} {
		sp := &loadSpec{table: tc.table, charset: "utf8mb4"}
		got, err := sp.slot(tc.row)
		if tc.code != 0 {
			e, ok := sqlerr.As(err)
			if !ok || e.Code != tc.code || !strings.Contains(e.Message, "row "+strconv.FormatInt(tc.row.Line, 10)) {
				t.Errorf("%s %q: %v, want error %d naming the row", tc.table.Name, tc.row.Key, err, tc.code)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s %q: slot %d, %v; want %d", tc.table.Name, tc.row.Key, got, err, tc.want)
		}
	}
}

func slotOf(t *testing.T, tbl *rules.Table, v rules.Value) int {
	t.Helper()
	slot, err := tbl.Scheme.Func.Slot(v)
	if err != nil {
		t.Fatal(err)
	}
	return slot
}

// TestLoadPlaces: a load writes one copy per shard, the default shard's first; a
// table-per-slot layout with several slot tables on one shard is refused.
func TestLoadPlaces(t *testing.T) {
	snap, err := rules.Build(plantest.ShardedConfig())
	if err != nil {
		t.Fatal(err)
	}
	db, _ := snap.Database("shop")
	for name, want := range map[string]string{"orders": "s0 s1 s2 s3", "currencies": "s0 s1 s2 s3", "events": "s0 s1 s2"} {
		ps, err := loadPlaces(db.Table(name))
		var got []string
		for _, p := range ps {
			got = append(got, p.Shard.Name)
		}
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("%s: %v, %v; want %s", name, got, err, want)
		}
	}
	if _, err := loadPlaces(db.Table("accounts")); err == nil || !strings.Contains(err.Error(), "several slot tables") {
		t.Errorf("accounts (two slot tables per shard): %v, want a refusal", err)
	}
}

// TestNewLoadSpec: what a LOAD DATA into a sharded table says is checked without a backend:
// its layout, its shard key's field (from its column list, or the table's columns), and the
// character set its file is read in; what the proxy cannot split is refused with 1235.
func TestNewLoadSpec(t *testing.T) {
	snap, err := rules.Build(plantest.ShardedConfig())
	if err != nil {
		t.Fatal(err)
	}
	db, _ := snap.Database("shop")
	orders := db.Table("orders")
	for _, tc := range []struct {
		sql     string
		columns []string // the table's, for a statement that lists none
		charset string
		key     int // the key's field, when code is 0
		fields  int
		ignore  uint64
		code    uint16
	}{
		{"LOAD DATA LOCAL INFILE 'f' INTO TABLE orders (id, user_id, total)", nil, "utf8mb4", 1, 3, 0, 0},
		{"LOAD DATA LOCAL INFILE 'f' INTO TABLE orders IGNORE 2 LINES (@skip, user_id)", nil, "latin1", 1, 2, 2, 0},
		{"LOAD DATA LOCAL INFILE 'f' INTO TABLE orders", []string{"id", "user_id", "total"}, "binary", 1, 3, 0, 0},
		{"LOAD DATA LOCAL INFILE 'f' INTO TABLE orders IGNORE 3 LINES (user_id, id)", nil, "ascii", 0, 2, 3, 0},
		{"LOAD DATA LOCAL INFILE 'f' INTO TABLE orders (id, total)", nil, "utf8mb4", 0, 0, 0, sqlerr.ErNotSupportedYet},
		{"LOAD DATA LOCAL INFILE 'f' INTO TABLE orders (id, @k) SET user_id = @k", nil, "utf8mb4", 0, 0, 0, sqlerr.ErNotSupportedYet},
		{"LOAD DATA LOCAL INFILE 'f' INTO TABLE orders (id, user_id)", nil, "utf16", 0, 0, 0, sqlerr.ErNotSupportedYet},
		{"LOAD DATA LOCAL INFILE 'f' INTO TABLE orders FIELDS TERMINATED BY '' (id, user_id)", nil, "utf8mb4", 0, 0, 0, sqlerr.ErNotSupportedYet},
	} {
		t.Run(tc.sql, func(t *testing.T) {
			st, err := parser.New().ParseOneStmt(tc.sql, "", "")
			if err != nil {
				t.Fatal(err)
			}
			sp, names, err := newLoadSpec(orders, st.(*ast.LoadDataStmt))
			if err == nil {
				if len(names) == 0 {
					names = tc.columns
				}
				if err = sp.placeKey(names); err == nil {
					err = sp.setCharset(tc.charset)
				}
			}
			if sqlCode(err) != tc.code {
				t.Fatalf("err = %v, want code %d", err, tc.code)
			}
			if err == nil && (sp.key != tc.key || sp.fields != tc.fields || sp.ignore != tc.ignore || sp.charset != tc.charset) {
				t.Errorf("key %d fields %d ignore %d charset %s; want %d %d %d %s", sp.key, sp.fields, sp.ignore, sp.charset, tc.key, tc.fields, tc.ignore, tc.charset)
			}
		})
	}
}
