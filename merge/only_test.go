package merge

import "testing"

// TestGroupsOnly: an aggregate with Only reads the rows whose OnlyCol holds those bytes and
// no other; rows it skips leave COUNT at 0, SUM and MIN NULL, as over no rows.
func TestGroupsOnly(t *testing.T) {
	// Columns: group, branch, partial value.
	data := [][]string{{"1", "0", "5"}, {"1", "1", "7"}, {"1", "1", "9"}, {"2", "0", "NULL"}, {"2", "0", "4"}}
	only := func(f AggFunc, branch string) Agg {
		return Agg{Func: f, Col: 2, Kind: KindSigned, Weight: -1, Only: []byte(branch), OnlyCol: 1}
	}
	for _, c := range []struct {
		name string
		agg  Agg
		want string
	}{
		{"COUNT of branch 1 adds its partial counts", only(AggCount, "1"), "1,0,16;2,0,0"},
		{"SUM of branch 0", only(AggSum, "0"), "1,0,5;2,0,4"},
		{"MIN of branch 1", only(AggMin, "1"), "1,0,7;2,0,NULL"},
		{"without Only every row", Agg{Func: AggSum, Col: 2, Kind: KindSigned, Weight: -1}, "1,0,21;2,0,4"},
	} {
		out := Groups(&rows{data: data}, []Key{{Col: 0, Weight: -1, Kind: KindSigned}}, []Agg{c.agg})
		if got := collect(t, out); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
