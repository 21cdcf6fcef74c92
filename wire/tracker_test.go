package wire

import (
	"slices"
	"testing"
)

// TestResultTracker names the packets of responses: an OK, a result set, an ERR in the
// middle of one, two result sets in a row (a CALL), and a first packet that opens none.
func TestResultTracker(t *testing.T) {
	def := AppendColumnDef(nil, Column{Name: "a"})
	eof := AppendEOF(nil, 0, 0)
	row := AppendTextRow(nil, []*string{nil, nil})
	errp := []byte{ErrHeader, 0x15, 0x04, '#', 'H', 'Y', '0', '0', '0', 'x'}
	ok := AppendOK(nil, OK{})
	cases := []struct {
		name string
		in   [][]byte
		want []ResultPart
	}{
		{"ok", [][]byte{ok}, []ResultPart{PartOK}},
		{"err", [][]byte{errp}, []ResultPart{PartErr}},
		{"result set", [][]byte{{2}, def, def, eof, row, row, eof},
			[]ResultPart{PartColumnCount, PartColumnDef, PartColumnDef, PartDefsEOF, PartRow, PartRow, PartEnd}},
		{"no rows", [][]byte{{1}, def, eof, eof}, []ResultPart{PartColumnCount, PartColumnDef, PartDefsEOF, PartEnd}},
		{"err among the rows", [][]byte{{1}, def, eof, row, errp, ok},
			[]ResultPart{PartColumnCount, PartColumnDef, PartDefsEOF, PartRow, PartErr, PartOK}},
		{"two result sets and the OK of a CALL", [][]byte{{1}, def, eof, row, eof, {2}, def, def, eof, eof, ok},
			[]ResultPart{PartColumnCount, PartColumnDef, PartDefsEOF, PartRow, PartEnd, PartColumnCount, PartColumnDef, PartColumnDef, PartDefsEOF, PartEnd, PartOK}},
		{"a row that looks like a column count", [][]byte{{1}, def, eof, {1}, eof}, []ResultPart{PartColumnCount, PartColumnDef, PartDefsEOF, PartRow, PartEnd}},
		{"not a column count", [][]byte{{0xfc, 1}, {}}, []ResultPart{PartOther, PartOther}},
		{"too many columns", [][]byte{{0xfd, 0, 0, 1}}, []ResultPart{PartOther}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tr ResultTracker
			var got []ResultPart
			for _, p := range c.in {
				got = append(got, tr.Next(p))
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("parts %v, want %v", got, c.want)
			}
		})
	}
}
