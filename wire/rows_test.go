package wire_test

import (
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/wire"
)

func TestCheckTextRow(t *testing.T) {
	for _, c := range []struct {
		name  string
		row   []byte
		ncols int
		ok    bool
	}{
		{"two values", []byte{1, 'a', 2, 'b', 'c'}, 2, true},
		{"NULL and empty", []byte{0xfb, 0}, 2, true},
		{"empty row, no columns", nil, 0, true},
		{"empty packet", nil, 1, false},
		{"one value missing", []byte{1, 'a'}, 2, false},
		{"one value too many", []byte{1, 'a', 1, 'b'}, 1, false},
		{"length past the end", []byte{0xfc, 0x00, 0x10, 'a', 'b', 'c'}, 1, false},
		{"8-byte length past the end", []byte{0xfe, 1, 0, 0, 0, 0, 0, 0, 0x80}, 1, false},
		{"truncated length", []byte{0xfd, 1}, 1, false},
	} {
		if got := wire.CheckTextRow(c.row, c.ncols); got != c.ok {
			t.Errorf("%s: CheckTextRow(% x, %d) = %v, want %v", c.name, c.row, c.ncols, got, c.ok)
		}
	}
}

func TestCheckBinaryRow(t *testing.T) {
	long, str, dt := byte(mysql.MYSQL_TYPE_LONGLONG), byte(mysql.MYSQL_TYPE_VAR_STRING), byte(mysql.MYSQL_TYPE_DATETIME)
	for _, c := range []struct {
		name  string
		row   []byte
		types []byte
		ok    bool
	}{
		{"bigint and string", []byte{0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 'h', 'i'}, []byte{long, str}, true},
		{"NULL bigint", []byte{0, 0x04, 2, 'h', 'i'}, []byte{long, str}, true},
		{"datetime", []byte{0, 0, 4, 0xe8, 0x07, 1, 2}, []byte{dt}, true},
		{"no header", []byte{1, 0, 2, 'h', 'i'}, []byte{str}, false},
		{"no bitmap", []byte{0}, []byte{str}, false},
		{"short bigint", []byte{0, 0, 1, 2, 3}, []byte{long}, false},
		{"string past the end", []byte{0, 0, 0xfc, 0, 0x10, 'a'}, []byte{str}, false},
		{"datetime past the end", []byte{0, 0, 11, 1, 2}, []byte{dt}, false},
		{"bytes left over", []byte{0, 0, 1, 'a', 'b'}, []byte{str}, false},
		{"empty packet", nil, []byte{str}, false},
	} {
		if got := wire.CheckBinaryRow(c.row, c.types); got != c.ok {
			t.Errorf("%s: CheckBinaryRow(% x) = %v, want %v", c.name, c.row, got, c.ok)
		}
	}
}
