package router

import (
	"context"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// TestLogicalRows: rows from shard s0 of plantest.ShardedConfig (slots 0 and 1 of the table-per-slot
// tables, physical database shop_s0) come back with logical names, each logical table once,
// in the text and the binary protocol.
func TestLogicalRows(t *testing.T) {
	s := fakeSession(t, shardedRouter(t, newFakeBackend()), "app", 1)
	snap := s.r.rules.Load()
	db, _ := snap.Database("shop")
	names := introspect.NamesOn(snap, s.user, db.DefaultShard)
	if got, _ := names.Physical("accounts"); got != "accounts_0000" {
		t.Errorf("accounts on s0 is %q, want accounts_0000", got)
	}
	if other := names.OtherSlots(); !slices.Equal(other, []string{"accounts_0001", "ledger_0001"}) {
		t.Errorf("other slots %v, want accounts_0001 and ledger_0001", other)
	}
	str := func(v string) *string { return &v }
	in := [][]*string{
		{str("shop_s0"), str("accounts_0000"), str("7")},
		{str("shop_s0"), str("accounts_0001"), str("7")},
		{str("shop_s0"), str("orders"), nil},
		{str("shop_s0"), str("accounts_0000_x"), str("1")},
		{str("shop_s0"), str("CREATE TABLE `accounts_0000` (\n  `id` int\n)"), str("2")},
	}
	want := [][]string{
		{"shop", "accounts", "7"},
		{"shop", "orders", "NULL"},
		{"shop", "accounts_0000_x", "1"},
		{"shop", "CREATE TABLE `accounts` (\n  `id` int\n)", "2"},
	}
	cols := []wire.Column{
		{Name: "TABLE_SCHEMA", Type: mysql.MYSQL_TYPE_VAR_STRING},
		{Name: "TABLE_NAME", Type: mysql.MYSQL_TYPE_VAR_STRING},
		{Name: "N", Type: mysql.MYSQL_TYPE_LONGLONG},
	}
	for _, bin := range []bool{false, true} {
		var out clientRecorder
		l := introspect.NewRows(&out, names, bin)
		for range 2 { // two result sets in a row
			if bin {
				writeBinaryResult(t, l, cols, in)
			} else if err := wire.WriteTextResult(l, cols, in, wire.StatusAutocommit); err != nil {
				t.Fatal(err)
			}
		}
		got := decodeRows(t, out.Pkts, bin)
		if len(got) != 2*len(want) {
			t.Fatalf("binary %v: rows %q, want twice %q", bin, got, want)
		}
		for i, row := range got {
			if !slices.Equal(row, want[i%len(want)]) {
				t.Errorf("binary %v: row %d = %q, want %q", bin, i, row, want[i%len(want)])
			}
		}
	}
}

// writeBinaryResult writes rows as a binary-protocol result set (the third column an integer).
func writeBinaryResult(t *testing.T, w wire.PacketWriter, cols []wire.Column, rows [][]*string) {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.WritePacket(wire.AppendLenencInt(nil, uint64(len(cols)))))
	for _, c := range cols {
		must(w.WritePacket(wire.AppendColumnDef(nil, c)))
	}
	must(w.WritePacket(wire.AppendEOF(nil, 0, wire.StatusAutocommit)))
	for _, r := range rows {
		vals := make([][]byte, len(r))
		for i, v := range r {
			if v != nil {
				vals[i] = []byte(*v)
			}
		}
		defs := []wire.ColDef{{Type: mysql.MYSQL_TYPE_VAR_STRING}, {Type: mysql.MYSQL_TYPE_VAR_STRING}, {Type: mysql.MYSQL_TYPE_LONGLONG}}
		p, err := engine.AppendBinaryRow(nil, defs, vals)
		must(err)
		must(w.WritePacket(p))
	}
	must(w.WritePacket(wire.AppendEOF(nil, 0, wire.StatusAutocommit)))
}

// decodeRows reads the rows of the 3-column result sets in pkts as text ("NULL" for NULL).
func decodeRows(t *testing.T, pkts [][]byte, bin bool) [][]string {
	t.Helper()
	var out [][]string
	for i := 0; i < len(pkts); {
		i += 1 + 3 + 1 // column count, definitions, EOF
		for ; i < len(pkts) && !wire.IsEOF(pkts[i]); i++ {
			p := pkts[i]
			var row []string
			if bin {
				nulls := p[1:2]
				p = p[2:]
				for c := range 3 {
					switch {
					case nulls[0]&(1<<(c+2)) != 0:
						row = append(row, "NULL")
					case c == 2:
						row = append(row, string(rune('0'+binary.LittleEndian.Uint64(p))))
						p = p[8:]
					default:
						v, _, n := wire.LenencString(p)
						row = append(row, string(v))
						p = p[n:]
					}
				}
			} else {
				for range 3 {
					v, null, n := wire.LenencString(p)
					if null {
						row = append(row, "NULL")
					} else {
						row = append(row, string(v))
					}
					p = p[n:]
				}
			}
			out = append(out, row)
		}
		i++ // the closing EOF
	}
	return out
}

// TestUnparsedInformationSchema: a statement the parser rejects is passed through to an
// unsharded database, but not when it reads information_schema, which the proxy can only
// filter in statements it parsed.
func TestUnparsedInformationSchema(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	s.db = "blog"
	var w clientRecorder
	sql := "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop_0' LIMIT ROWS EXAMINED 1000"
	if _, err := s.parse(sql); err == nil {
		t.Fatalf("the parser knows %q: pick a statement it rejects", sql)
	}
	if err := s.Query(context.Background(), sql, false, &w); sqlCode(err) != sqlerr.ErSpecificAccessDenied {
		t.Errorf("unparsed information_schema query: %v, want 1227", err)
	}
	if _, err := s.Prepare(context.Background(), sql); sqlCode(err) != sqlerr.ErSpecificAccessDenied {
		t.Errorf("unparsed information_schema prepare: %v, want 1227", err)
	}
	// Nor does any other statement the parser cannot read, unless it has one of the shapes
	// of unparsed.go (TestUnparsedAllowList).
	if err := s.Query(context.Background(), "SELECT 1 LIMIT ROWS EXAMINED 10", false, &w); sqlCode(err) != sqlerr.ErParse {
		t.Errorf("unparsed SELECT: %v, want 1064", err)
	}
	wantLog(t, be)
}

// TestFieldListShardedTable: COM_FIELD_LIST of a table-per-slot table asks the first slot
// table on the default shard.
func TestFieldListShardedTable(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, shardedRouter(t, be), "app", 1)
	s.db = "shop"
	var w clientRecorder
	for _, table := range []string{"accounts", "orders", "settings"} {
		if err := s.FieldList(context.Background(), table, "", &w); err != nil {
			t.Fatalf("field list of %s: %v", table, err)
		}
	}
	wantLog(t, be, "s0#1: USE shop_s0", "s0#1: FIELD_LIST accounts_0000", "s0#1: FIELD_LIST orders", "s0#1: FIELD_LIST settings")
}
