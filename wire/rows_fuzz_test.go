package wire_test

import (
	"testing"

	"github.com/shardproxy/shardproxy/wire"
)

// FuzzCheckRows feeds arbitrary rows to the row checks. Neither may panic; a text row they
// accept splits into exactly ncols values with nothing left, and a binary row they accept
// for string columns does too (after its header and NULL bitmap).
func FuzzCheckRows(f *testing.F) {
	f.Add([]byte{1, 'a', 2, 'b', 'c'}, uint8(2))
	f.Add([]byte{0xfb, 0xfc, 0x00, 0x10, 'x'}, uint8(2))
	f.Add([]byte{0, 0x04, 2, 'h', 'i'}, uint8(2))
	f.Add([]byte{0xfe, 1, 0, 0, 0, 0, 0, 0, 0x80}, uint8(1))
	f.Fuzz(func(t *testing.T, row []byte, n uint8) {
		ncols := int(n % 16)
		if wire.CheckTextRow(row, ncols) {
			p := row
			for range ncols {
				_, _, m := wire.LenencString(p)
				if m == 0 {
					t.Fatalf("accepted text row % x does not split into %d values", row, ncols)
				}
				p = p[m:]
			}
			if len(p) != 0 {
				t.Fatalf("accepted text row % x leaves %d bytes", row, len(p))
			}
		}
		types := make([]byte, ncols)
		for i := range types {
			types[i] = 0xfd // VAR_STRING
		}
		if wire.CheckBinaryRow(row, types) {
			nb := (ncols + 9) / 8
			if len(row) < 1+nb || row[0] != 0 {
				t.Fatalf("accepted binary row % x without its header and bitmap", row)
			}
		}
	})
}
