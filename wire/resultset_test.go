package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/shardproxy/shardproxy/wire"
)

// recorder is a PacketWriter that keeps a copy of each payload.
type recorder struct {
	pkts [][]byte
	fail int // fail the fail-th write (1-based); 0 never
}

var errWrite = errors.New("write failed")

func (r *recorder) WritePacket(p []byte) error {
	if r.fail > 0 && len(r.pkts)+1 == r.fail {
		return errWrite
	}
	r.pkts = append(r.pkts, bytes.Clone(p))
	return nil
}

func TestAppendColumnDef(t *testing.T) {
	// Protocol::ColumnDefinition41: catalog "def", schema, table, org_table, name, org_name
	// (all lenenc strings), 0x0c, character set (2), column length (4), type (1), flags (2),
	// decimals (1), two filler bytes.
	c := wire.Column{
		Schema: "shop", Table: "o", OrgTable: "orders", Name: "id", OrgName: "order_id",
		Charset: 63, Length: 20, Type: 0x08, Flags: 0x4203, Decimals: 0,
	}
	want := unhex(t, "03646566 0473686f70 016f 066f7264657273 026964 086f726465725f6964"+
		" 0c 3f00 14000000 08 0342 00 0000")
	got := wire.AppendColumnDef(nil, c)
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendColumnDef =\n% x\nwant\n% x", got, want)
	}
	name, ok := wire.ParseColumnName(got)
	if !ok || name != "id" {
		t.Errorf("ParseColumnName = %q, %v; want \"id\", true", name, ok)
	}
}

func TestParseColumnName(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want string
		ok   bool
	}{
		{"empty name", wire.AppendColumnDef(nil, wire.Column{}), "", true},
		{"utf8 name", wire.AppendColumnDef(nil, wire.Column{Name: "prix €"}), "prix €", true},
		{"expression name", wire.AppendColumnDef(nil, wire.Column{Name: "CONNECTION_ID()"}), "CONNECTION_ID()", true},
		{"empty packet", nil, "", false},
		{"cut in schema", unhex(t, "03646566 05"), "", false},
		{"cut before name", unhex(t, "03646566 00 00 00"), "", false},
		{"cut in name", unhex(t, "03646566 00 00 00 0461"), "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := wire.ParseColumnName(c.in)
			if got != c.want || ok != c.ok {
				t.Errorf("ParseColumnName = %q, %v; want %q, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func strp(s string) *string { return &s }

func TestAppendTextRow(t *testing.T) {
	cases := []struct {
		name string
		row  []*string
		want string
	}{
		{"values and NULL", []*string{strp("1"), nil, strp("")}, "0131 fb 00"},
		{"no columns", nil, ""},
		{"value that looks like NULL", []*string{strp("\xfb")}, "01fb"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := wire.AppendTextRow(nil, c.row); !bytes.Equal(got, unhex(t, c.want)) {
				t.Errorf("AppendTextRow = % x, want %s", got, c.want)
			}
		})
	}
}

func TestWriteTextResult(t *testing.T) {
	cols := []wire.Column{
		{Name: "a", Charset: 45, Type: 0xfd},
		{Name: "b", Charset: 63, Type: 0x08},
	}
	rows := [][]*string{{strp("x"), strp("1")}, {nil, strp("2")}}
	var r recorder
	if err := wire.WriteTextResult(&r, cols, rows, wire.StatusAutocommit|wire.StatusMoreResults); err != nil {
		t.Fatal(err)
	}
	want := [][]byte{
		unhex(t, "02"),
		wire.AppendColumnDef(nil, cols[0]),
		wire.AppendColumnDef(nil, cols[1]),
		unhex(t, "fe 0000 0a00"),
		unhex(t, "0178 0131"),
		unhex(t, "fb 0132"),
		unhex(t, "fe 0000 0a00"),
	}
	if len(r.pkts) != len(want) {
		t.Fatalf("got %d packets, want %d: % x", len(r.pkts), len(want), r.pkts)
	}
	for i := range want {
		if !bytes.Equal(r.pkts[i], want[i]) {
			t.Errorf("packet %d = % x, want % x", i, r.pkts[i], want[i])
		}
	}
}

func TestWriteTextResultEmpty(t *testing.T) {
	var r recorder
	if err := wire.WriteTextResult(&r, []wire.Column{{Name: "Database"}}, nil, 0); err != nil {
		t.Fatal(err)
	}
	if len(r.pkts) != 4 || !wire.IsEOF(r.pkts[2]) || !wire.IsEOF(r.pkts[3]) {
		t.Errorf("empty result packets = % x", r.pkts)
	}
}

func TestWriteTextResultStopsOnError(t *testing.T) {
	cols := []wire.Column{{Name: "a"}}
	rows := [][]*string{{strp("1")}, {strp("2")}}
	for fail := 1; fail <= 6; fail++ { // count, def, EOF, row, row, EOF
		r := recorder{fail: fail}
		err := wire.WriteTextResult(&r, cols, rows, 0)
		if !errors.Is(err, errWrite) {
			t.Errorf("failing write %d: err = %v, want errWrite", fail, err)
		}
		if len(r.pkts) != fail-1 {
			t.Errorf("failing write %d: %d packets written before stopping, want %d", fail, len(r.pkts), fail-1)
		}
	}
}
