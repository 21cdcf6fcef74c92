package merge

import (
	"strings"
	"testing"
)

// TestGroupsOnly: an aggregate with Only reads the rows whose OnlyCol holds those bytes and
// no other; rows it skips leave COUNT at 0, SUM and MIN NULL, as over no rows.
func TestGroupsOnly(t *testing.T) {
	// Columns: group, branch, value.
	rows := [][]string{{"1", "0", "5"}, {"1", "1", "7"}, {"1", "1", "9"}, {"2", "0", "NULL"}, {"2", "0", "4"}}
	for _, c := range []struct {
		name string
		aggs []Agg
		want string
	}{
		{"COUNT of branch 1 adds its partial counts", []Agg{{Func: AggCount, Col: 2, Kind: KindSigned, Weight: -1, Only: []byte("1"), OnlyCol: 1}}, "1,0,16;2,0,0"},
		{"SUM of branch 0", []Agg{{Func: AggSum, Col: 2, Kind: KindSigned, Weight: -1, Only: []byte("0"), OnlyCol: 1}}, "1,0,5;2,0,4"},
		{"MIN of branch 1", []Agg{{Func: AggMin, Col: 2, Kind: KindSigned, Weight: -1, Only: []byte("1"), OnlyCol: 1}}, "1,0,7;2,0,NULL"},
		{"without Only every row", []Agg{{Func: AggSum, Col: 2, Kind: KindSigned, Weight: -1}}, "1,0,21;2,0,4"},
	} {
		var in [][][]byte
		for _, r := range rows {
			row := make([][]byte, len(r))
			for i, v := range r {
				if v != "NULL" {
					row[i] = []byte(v)
				}
			}
			in = append(in, row)
		}
		out := Groups(&rowStream{rows: in}, []Key{{Col: 0, Weight: -1, Kind: KindSigned}}, c.aggs)
		var got []string
		for {
			row, err := out.Next()
			if err != nil {
				t.Fatal(err)
			}
			if row == nil {
				break
			}
			var vals []string
			for _, v := range row {
				if v == nil {
					vals = append(vals, "NULL")
				} else {
					vals = append(vals, string(v))
				}
			}
			got = append(got, strings.Join(vals, ","))
		}
		if g := strings.Join(got, ";"); g != c.want {
			t.Errorf("%s: %s, want %s", c.name, g, c.want)
		}
	}
}

// rowStream is a Stream over fixed rows.
type rowStream struct {
	rows [][][]byte
	i    int
}

func (s *rowStream) Next() ([][]byte, error) {
	if s.i >= len(s.rows) {
		return nil, nil
	}
	s.i++
	return s.rows[s.i-1], nil
}
