package introspect

import (
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/wire"
)

func TestColNamesRewrite(t *testing.T) {
	n := Columns{dbs: map[string]string{"shop_s2": "shop"}, perSlot: map[string]bool{"ledger": true}}
	for _, c := range []struct {
		name                    string
		in                      wire.Column
		schema, table, orgTable string
	}{
		{"physical database", wire.Column{Schema: "shop_s2", Table: "orders", OrgTable: "orders"}, "shop", "orders", "orders"},
		{"slot table", wire.Column{Schema: "shop_s2", Table: "ledger", OrgTable: "ledger_0005"}, "shop", "ledger", "ledger"},
		{"slot table without alias", wire.Column{Schema: "shop_s2", Table: "ledger_0012", OrgTable: "ledger_0012"}, "shop", "ledger", "ledger"},
		{"not a slot suffix", wire.Column{Schema: "other", Table: "ledger_12", OrgTable: "ledger_x123"}, "other", "ledger_12", "ledger_x123"},
		{"unknown table with a slot suffix", wire.Column{Schema: "shop_s2", Table: "audit_0001", OrgTable: "audit_0001"}, "shop", "audit_0001", "audit_0001"},
		{"expression column", wire.Column{Name: "COUNT(*)"}, "", "", ""},
	} {
		c.in.Name, c.in.OrgName, c.in.Type = "col", "col", mysql.MYSQL_TYPE_LONG
		out := n.Rewrite(wire.AppendColumnDef(nil, c.in))
		want := c.in
		want.Schema, want.Table, want.OrgTable = c.schema, c.table, c.orgTable
		if string(out) != string(wire.AppendColumnDef(nil, want)) {
			t.Errorf("%s: got % x, want % x", c.name, out, wire.AppendColumnDef(nil, want))
		}
	}
}

func TestLogicalColumns(t *testing.T) {
	var k collector
	l := &LogicalColumns{w: &k, names: Columns{dbs: map[string]string{"p": "l"}}}
	def := wire.AppendColumnDef(nil, wire.Column{Schema: "p", Table: "t", OrgTable: "t", Name: "a", OrgName: "a", Type: mysql.MYSQL_TYPE_VAR_STRING})
	logical := wire.AppendColumnDef(nil, wire.Column{Schema: "l", Table: "t", OrgTable: "t", Name: "a", OrgName: "a", Type: mysql.MYSQL_TYPE_VAR_STRING})
	eof := wire.AppendEOF(nil, 0, wire.StatusMoreResults)
	// Two result sets (a CALL), then an OK; a row that looks like a definition passes as is.
	in := [][]byte{{1}, def, eof, def, eof, {1}, def, eof, eof, wire.AppendOK(nil, wire.OK{})}
	for _, p := range in {
		if err := l.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	want := [][]byte{{1}, logical, eof, def, eof, {1}, logical, eof, eof, wire.AppendOK(nil, wire.OK{})}
	for i := range want {
		if string(k.Pkts[i]) != string(want[i]) {
			t.Errorf("packet %d: % x, want % x", i, k.Pkts[i], want[i])
		}
	}
}

// collector keeps the packets written to it.
type collector struct{ Pkts [][]byte }

// WritePacket keeps a copy of p.
func (c *collector) WritePacket(p []byte) error {
	c.Pkts = append(c.Pkts, append([]byte(nil), p...))
	return nil
}
