package engine

import (
	"bytes"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/shardproxy/shardproxy/wire"
)

func TestAppendBinaryValue(t *testing.T) {
	for _, c := range []struct {
		name string
		col  wire.ColDef
		text string
		want []byte
	}{
		{"tiny", wire.ColDef{Type: mysql.MYSQL_TYPE_TINY}, "-2", []byte{0xfe}},
		{"unsigned short", wire.ColDef{Type: mysql.MYSQL_TYPE_SHORT, Flags: mysql.UNSIGNED_FLAG}, "65535", []byte{0xff, 0xff}},
		{"long", wire.ColDef{Type: mysql.MYSQL_TYPE_LONG}, "258", []byte{2, 1, 0, 0}},
		{"longlong", wire.ColDef{Type: mysql.MYSQL_TYPE_LONGLONG}, "-1", bytes.Repeat([]byte{0xff}, 8)},
		{"unsigned longlong", wire.ColDef{Type: mysql.MYSQL_TYPE_LONGLONG, Flags: mysql.UNSIGNED_FLAG}, "18446744073709551615", bytes.Repeat([]byte{0xff}, 8)},
		{"double", wire.ColDef{Type: mysql.MYSQL_TYPE_DOUBLE}, "1.5", []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x3f}},
		{"float", wire.ColDef{Type: mysql.MYSQL_TYPE_FLOAT}, "1.5", []byte{0, 0, 0xc0, 0x3f}},
		{"decimal as text", wire.ColDef{Type: mysql.MYSQL_TYPE_NEWDECIMAL}, "12.50", []byte{5, '1', '2', '.', '5', '0'}},
		{"string", wire.ColDef{Type: mysql.MYSQL_TYPE_VAR_STRING}, "é", []byte{2, 0xc3, 0xa9}},
		{"date", wire.ColDef{Type: mysql.MYSQL_TYPE_DATE}, "2026-11-25", []byte{4, 0xea, 0x07, 11, 25}},
		{"zero date", wire.ColDef{Type: mysql.MYSQL_TYPE_DATE}, "0000-00-00", []byte{0}},
		{"datetime", wire.ColDef{Type: mysql.MYSQL_TYPE_DATETIME}, "2026-11-25 01:02:03", []byte{7, 0xea, 0x07, 11, 25, 1, 2, 3}},
		{"datetime at midnight", wire.ColDef{Type: mysql.MYSQL_TYPE_DATETIME}, "2026-11-25 00:00:00", []byte{4, 0xea, 0x07, 11, 25}},
		{"datetime with microseconds", wire.ColDef{Type: mysql.MYSQL_TYPE_TIMESTAMP}, "2026-11-25 01:02:03.5", []byte{11, 0xea, 0x07, 11, 25, 1, 2, 3, 0x20, 0xa1, 0x07, 0}},
		{"time", wire.ColDef{Type: mysql.MYSQL_TYPE_TIME}, "-26:00:01", []byte{8, 1, 1, 0, 0, 0, 2, 0, 1}},
		{"zero time", wire.ColDef{Type: mysql.MYSQL_TYPE_TIME}, "00:00:00", []byte{0}},
		{"time with microseconds", wire.ColDef{Type: mysql.MYSQL_TYPE_TIME}, "00:00:01.000001", []byte{12, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0}},
	} {
		got, err := appendBinaryValue(nil, c.col, []byte(c.text))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s: %q encodes as % x, want % x", c.name, c.text, got, c.want)
		}
	}
	if _, err := appendBinaryValue(nil, wire.ColDef{Type: mysql.MYSQL_TYPE_LONG}, []byte("x")); err == nil {
		t.Error("a non-integer in an integer column encoded without error")
	}
}

func TestAppendBinaryRow(t *testing.T) {
	cols := []wire.ColDef{{Type: mysql.MYSQL_TYPE_LONG}, {Type: mysql.MYSQL_TYPE_VAR_STRING}, {Type: mysql.MYSQL_TYPE_TINY}}
	got, err := AppendBinaryRow(nil, cols, [][]byte{[]byte("7"), nil, []byte("1")})
	if err != nil {
		t.Fatal(err)
	}
	// header, NULL bitmap with column 1 (bit 1+2) set, then the two values
	want := []byte{0x00, 0x08, 7, 0, 0, 0, 1}
	if !bytes.Equal(got, want) {
		t.Fatalf("row % x, want % x", got, want)
	}
}
