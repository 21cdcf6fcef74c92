package integration

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
)

// layouts are the two ways a logical database maps to a physical one. With different
// names, statements name tables qualified (shop.t), so the proxy must rewrite them.
var layouts = []struct {
	name    string
	suffix  string // physical database name suffix; "" keeps the logical name
	qualify bool
}{
	{"SameName", "", false},
	{"LogicalToPhysical", "_phys", true},
}

// driverModes are go-sql-driver's two ways of sending arguments.
var driverModes = []struct {
	name   string
	params []string
}{
	{"Interpolated", []string{"interpolateParams=true"}},
	{"ServerPrepared", nil},
}

const typesDDL = `CREATE TABLE %s (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  c_int INT, c_bigu BIGINT UNSIGNED, c_dec DECIMAL(20,6), c_f FLOAT, c_d DOUBLE,
  c_dt DATE, c_dtm DATETIME(6), c_ts TIMESTAMP(6) NULL DEFAULT NULL, c_tm TIME(6), c_y YEAR,
  c_ch CHAR(10), c_vc VARCHAR(200), c_tx TEXT, c_bl BLOB, c_js JSON,
  c_en ENUM('small','medium','large'), c_bt BIT(8)
) DEFAULT CHARSET=utf8mb4`

const typesCols = "c_int, c_bigu, c_dec, c_f, c_d, c_dt, c_dtm, c_ts, c_tm, c_y, c_ch, c_vc, c_tx, c_bl, c_js, c_en, c_bt"

// typesRow is one row to insert (arguments) and what MariaDB's text protocol must answer
// for it (nil for NULL).
type typesRow struct {
	args []any
	want [][]byte
}

var (
	allBytes    = []byte{0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x00, '\'', '"', '\\', 0x1a, '\n', '\r', 0x00}
	unicodeText = "héllo wörld 😀 日本語 \u202e \\ 'quoted' \"dq\""
	longText    = strings.Repeat("Ünïcödé ✓ 😀 ", 2000)
	jsonDoc     = `{"a": [1, 2.5, "x"], "b": null, "ü": true, "s": "😀"}`
)

func typesRows() []typesRow {
	s := func(v string) []byte { return []byte(v) }
	return []typesRow{{
		args: []any{int64(math.MinInt32), uint64(math.MaxUint64), "12345678901234.123456", float32(3.25), 1.0 / 3.0,
			"2024-02-29", "2024-02-29 23:59:58.123456", "2030-06-15 12:34:56.654321", "-838:59:59", 2155,
			"ab", unicodeText, longText, allBytes, jsonDoc, "medium", 0xa5},
		want: [][]byte{s("-2147483648"), s("18446744073709551615"), s("12345678901234.123456"), s("3.25"), s("0.3333333333333333"),
			s("2024-02-29"), s("2024-02-29 23:59:58.123456"), s("2030-06-15 12:34:56.654321"), s("-838:59:59.000000"), s("2155"),
			s("ab"), s(unicodeText), s(longText), allBytes, s(jsonDoc), s("medium"), {0xa5}},
	}, {
		args: []any{nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
		want: make([][]byte, 17),
	}, {
		args: []any{int64(math.MaxInt32), uint64(0), "-0.000001", float32(-1.5), -2.5e-300,
			"1000-01-01", "1000-01-01 00:00:00", "1970-01-02 00:00:01", "00:00:00.5", 1901,
			"", "", "", []byte{}, "[]", "small", 0},
		want: [][]byte{s("2147483647"), s("0"), s("-0.000001"), s("-1.5"), s("-2.5e-300"),
			s("1000-01-01"), s("1000-01-01 00:00:00.000000"), s("1970-01-02 00:00:01.000000"), s("00:00:00.500000"), s("1901"),
			s(""), s(""), s(""), s(""), s("[]"), s("small"), {0x00}},
	}}
}

// testColumnTypes runs CRUD on a table of many column types through the proxy, with both
// argument modes of go-sql-driver and both database layouts, and compares everything the
// proxy returns with what MariaDB returns for the same query, value by value and byte by
// byte on the wire.
func testColumnTypes(t *testing.T, e *env) {
	for _, lay := range layouts {
		t.Run(lay.name, func(t *testing.T) {
			m := dbMap{Logical: "shop", Physical: "shop" + lay.suffix}
			p := startProxy(t, e.config(t, m))
			for _, mode := range driverModes {
				t.Run(mode.name, func(t *testing.T) {
					table := "types_" + strings.ToLower(mode.name)
					ref, phys := table, m.Physical+"."+table
					if lay.qualify {
						ref = m.Logical + "." + table
					}
					db := p.open(t, appUser, appPass, m.Logical, mode.params...)
					direct := e.direct(t, m.Physical, mode.params...)
					columnTypesCRUD(t, db, direct, ref, phys)
					columnTypesWire(t, e, p, m, ref, phys)
				})
			}
		})
	}
}

func columnTypesCRUD(t *testing.T, db, direct *sql.DB, ref, phys string) {
	ctx := context.Background()
	mustExec(t, db, "DROP TABLE IF EXISTS "+ref, fmt.Sprintf(typesDDL, ref))
	rows := typesRows()
	ins := "INSERT INTO " + ref + " (" + typesCols + ") VALUES (" + strings.Repeat("?, ", 16) + "?)"
	for i, r := range rows {
		res, err := db.ExecContext(ctx, ins, r.args...)
		if err != nil {
			t.Fatalf("insert row %d: %v", i+1, err)
		}
		if id, _ := res.LastInsertId(); id != int64(i+1) {
			t.Errorf("insert row %d: LastInsertId %d", i+1, id)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Errorf("insert row %d: RowsAffected %d", i+1, n)
		}
	}
	// What was stored, read directly from MariaDB in the text protocol: the proxy must have
	// passed every argument through unchanged.
	checkStored := func(what string, want [][][]byte) {
		t.Helper()
		got := query(t, direct, "SELECT "+typesCols+" FROM "+phys+" ORDER BY id")
		if len(got.Rows) != len(want) {
			t.Fatalf("%s: %d rows stored, want %d", what, len(got.Rows), len(want))
		}
		for i, row := range want {
			for j, w := range row {
				g := got.Rows[i][j]
				if w == nil {
					if g != nil {
						t.Errorf("%s: row %d %s: stored %q, want NULL", what, i+1, got.Columns[j], text(g))
					}
					continue
				}
				// go-sql-driver returns numbers of the text protocol as int64/float64.
				gb, ok := g.([]byte)
				if ok && !bytes.Equal(gb, w) || !ok && text(g) != string(w) {
					t.Errorf("%s: row %d %s: stored %s, want %s", what, i+1, got.Columns[j], short(g), short(w))
				}
			}
		}
	}
	want := make([][][]byte, len(rows))
	for i, r := range rows {
		want[i] = r.want
	}
	checkStored("after INSERT", want)
	compareSelects(t, db, direct, ref, phys, "after INSERT")

	// Parameters in WHERE: binary bytes and unicode must match the stored values.
	for _, c := range []struct {
		col string
		arg any
	}{{"c_bl", allBytes}, {"c_vc", unicodeText}, {"c_bigu", uint64(math.MaxUint64)}, {"c_dtm", "2024-02-29 23:59:58.123456"}} {
		got := query(t, db, "SELECT id FROM "+ref+" WHERE "+c.col+" = ?", c.arg)
		if len(got.Rows) != 1 || text(got.Rows[0][0]) != "1" {
			t.Errorf("SELECT id WHERE %s = ?: got %v, want row 1", c.col, got.Rows)
		}
	}

	newBlob := append(bytes.Repeat([]byte{0xff, 0x00}, 500), '\\')
	res, err := db.ExecContext(ctx, "UPDATE "+ref+" SET c_vc = ?, c_bl = ?, c_bigu = c_bigu - ? WHERE id = ?", "更新 ✓", newBlob, uint64(1), 1)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Errorf("update: RowsAffected %d, want 1", n)
	}
	want[0][11], want[0][13], want[0][1] = []byte("更新 ✓"), newBlob, []byte("18446744073709551614")
	checkStored("after UPDATE", want)
	compareSelects(t, db, direct, ref, phys, "after UPDATE")

	res, err = db.ExecContext(ctx, "DELETE FROM "+ref+" WHERE id = ?", 2)
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Errorf("delete: RowsAffected %d, want 1", n)
	}
	checkStored("after DELETE", [][][]byte{want[0], want[2]})
	compareSelects(t, db, direct, ref, phys, "after DELETE")
}

// compareSelects reads the table through the proxy and directly, in the text protocol (no
// arguments) and with an argument (binary protocol when the driver prepares), and compares
// the driver values one by one.
func compareSelects(t *testing.T, db, direct *sql.DB, ref, phys, what string) {
	t.Helper()
	sameResult(t, what+": SELECT *", query(t, db, "SELECT * FROM "+ref+" ORDER BY id"), query(t, direct, "SELECT * FROM "+phys+" ORDER BY id"))
	sameResult(t, what+": SELECT * WHERE id >= ?",
		query(t, db, "SELECT * FROM "+ref+" WHERE id >= ? ORDER BY id", 0),
		query(t, direct, "SELECT * FROM "+phys+" WHERE id >= ? ORDER BY id", 0))
	sameResult(t, what+": expressions",
		query(t, db, "SELECT id, c_bigu + 0, HEX(c_bl), LENGTH(c_tx), c_bt + 0, JSON_EXTRACT(c_js, '$.a[1]'), c_en + 0, ? AS arg FROM "+ref+" ORDER BY id", allBytes),
		query(t, direct, "SELECT id, c_bigu + 0, HEX(c_bl), LENGTH(c_tx), c_bt + 0, JSON_EXTRACT(c_js, '$.a[1]'), c_en + 0, ? AS arg FROM "+phys+" ORDER BY id", allBytes))
}

// columnTypesWire compares the packets of the same SELECT through the proxy and directly:
// column definitions and rows must be byte-identical, in the text and the binary protocol.
func columnTypesWire(t *testing.T, e *env, p *proxy, m dbMap, ref, phys string) {
	pc := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
	dc := connectRaw(t, e.srv.Addr(), e.srv.User, e.srv.Password, m.Physical)

	viaProxy, err := pc.query("SELECT * FROM " + ref + " ORDER BY id")
	if err != nil {
		t.Fatalf("raw text query through the proxy: %v", err)
	}
	direct, err := dc.query("SELECT * FROM " + phys + " ORDER BY id")
	if err != nil {
		t.Fatalf("raw text query on MariaDB: %v", err)
	}
	// MySQL would name the logical database in the column definitions: so does the proxy.
	logicalSchema := func(r rawResult) rawResult {
		for i, d := range r.Columns {
			r.Columns[i] = renameSchema(d, m.Physical, m.Logical)
		}
		return r
	}
	samePackets(t, "text protocol", viaProxy[0], logicalSchema(direct[0]))

	exec := func(c *rawConn, sql string) rawResult {
		t.Helper()
		id, n, err := c.prepare(sql)
		if err != nil || n != 1 {
			t.Fatalf("prepare %q: %d params, %v", sql, n, err)
		}
		if err := c.command(comStmtExecute, execPayload(id, []byte{0}, []byte{typeLongLong, 0}, binary.LittleEndian.AppendUint64(nil, 0))); err != nil {
			t.Fatal(err)
		}
		r, err := c.readResult()
		if err != nil {
			t.Fatalf("execute %q: %v", sql, err)
		}
		return r
	}
	samePackets(t, "binary protocol",
		exec(pc, "SELECT * FROM "+ref+" WHERE id >= ? ORDER BY id"),
		logicalSchema(exec(dc, "SELECT * FROM "+phys+" WHERE id >= ? ORDER BY id")))
}

// renameSchema returns column definition d with schema from replaced by to.
func renameSchema(d []byte, from, to string) []byte {
	f := columnDefFields(d)
	if f[1] != from {
		return d
	}
	rest := d
	for range f {
		n, m := lenencInt(rest)
		rest = rest[m+int(n):]
	}
	var out []byte
	for i, v := range f {
		if i == 1 {
			v = to
		}
		out = append(out, byte(len(v)))
		out = append(out, v...)
	}
	return append(out, rest...)
}

func samePackets(t *testing.T, what string, viaProxy, direct rawResult) {
	t.Helper()
	if len(viaProxy.Columns) != len(direct.Columns) || len(viaProxy.Rows) != len(direct.Rows) {
		t.Fatalf("%s: %d columns and %d rows through the proxy, %d and %d directly",
			what, len(viaProxy.Columns), len(viaProxy.Rows), len(direct.Columns), len(direct.Rows))
	}
	for i := range direct.Columns {
		if !bytes.Equal(viaProxy.Columns[i], direct.Columns[i]) {
			t.Errorf("%s: column definition %d differs:\n proxy  % x\n direct % x", what, i, viaProxy.Columns[i], direct.Columns[i])
		}
	}
	for i := range direct.Rows {
		if !bytes.Equal(viaProxy.Rows[i], direct.Rows[i]) {
			t.Errorf("%s: row %d differs:\n proxy  %s\n direct %s", what, i, short(viaProxy.Rows[i]), short(direct.Rows[i]))
		}
	}
}

// short formats a value for a message, eliding the middle of long ones.
func short(v any) string {
	var s string
	switch v := v.(type) {
	case []byte:
		s = fmt.Sprintf("%q", v)
	default:
		s = fmt.Sprintf("%q", text(v))
	}
	if len(s) > 200 {
		s = s[:100] + fmt.Sprintf("…(%d bytes)…", len(s)) + s[len(s)-60:]
	}
	return s
}
