package merge

import (
	"strings"
	"testing"
)

// rows is a Stream over fixed rows; "NULL" is NULL.
type rows struct {
	data [][]string
	i    int
}

func (r *rows) Next() ([][]byte, error) {
	if r.i >= len(r.data) {
		return nil, nil
	}
	row := make([][]byte, len(r.data[r.i]))
	for j, v := range r.data[r.i] {
		if v != "NULL" {
			row[j] = []byte(v)
		}
	}
	r.i++
	return row, nil
}

func collect(t *testing.T, s Stream) string {
	t.Helper()
	var out []string
	for {
		row, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if row == nil {
			return strings.Join(out, ";")
		}
		var vals []string
		for _, v := range row {
			if v == nil {
				vals = append(vals, "NULL")
			} else {
				vals = append(vals, string(v))
			}
		}
		out = append(out, strings.Join(vals, ","))
	}
}

func streams(data ...[][]string) []Stream {
	out := make([]Stream, len(data))
	for i, d := range data {
		out[i] = &rows{data: d}
	}
	return out
}

func TestCompare(t *testing.T) {
	for _, c := range []struct {
		kind Kind
		a, b string
		want int
	}{
		{KindSigned, "9", "10", -1},
		{KindSigned, "-5", "3", -1},
		{KindUnsigned, "18446744073709551615", "1", 1},
		{KindDecimal, "10.50", "9.99", 1},
		{KindDecimal, "-0.01", "0.00", -1},
		{KindDecimal, "2.0", "2.00", 0},
		{KindFloat, "1e3", "999.5", 1},
		{KindTemporal, "2026-01-02 00:00:00", "2025-12-31 23:59:59", 1},
		{KindTime, "-01:00:00", "00:30:00", -1},
		{KindTime, "100:00:00", "99:59:59.999999", 1},
		{KindString, "B", "a", -1}, // bytes: only weights give the collation's order
	} {
		if got := Compare(c.kind, []byte(c.a), []byte(c.b)); got != c.want {
			t.Errorf("Compare(%d, %q, %q) = %d, want %d", c.kind, c.a, c.b, got, c.want)
		}
	}
}

func TestDec(t *testing.T) {
	for _, c := range []struct {
		sum   []string
		n     int64
		scale int
		total string
		avg   string
	}{
		{[]string{"1.10", "2.205", "-0.5"}, 3, 4, "2.805", "0.9350"},
		{[]string{"10", "0"}, 3, 4, "10", "3.3333"},
		{[]string{"2", "0"}, 3, 4, "2", "0.6667"},
		{[]string{"-2", "0"}, 3, 4, "-2", "-0.6667"},
		{[]string{"0.00005"}, 1, 4, "0.00005", "0.0001"}, // half away from zero
		{[]string{"-0.00005"}, 1, 4, "-0.00005", "-0.0001"},
		{[]string{"99999999999999999999.99", "0.01"}, 2, 6, "100000000000000000000.00", "50000000000000000000.000000"},
	} {
		var d Dec
		for i, s := range c.sum {
			x, ok := ParseDec([]byte(s))
			if !ok {
				t.Fatalf("ParseDec(%q)", s)
			}
			if i == 0 {
				d = x
			} else {
				d.Add(&x)
			}
		}
		if got := d.String(); got != c.total {
			t.Errorf("sum %v = %s, want %s", c.sum, got, c.total)
		}
		q := d.Quo(c.n, c.scale)
		if got := q.String(); got != c.avg {
			t.Errorf("avg %v / %d = %s, want %s", c.sum, c.n, got, c.avg)
		}
	}
}

func TestMerge(t *testing.T) {
	num := []Key{{Col: 0, Weight: -1, Kind: KindSigned}}
	for _, c := range []struct {
		name  string
		build func() Stream
		want  string
	}{
		{"k-way ascending with NULL first", func() Stream {
			return Sorted(streams([][]string{{"NULL"}, {"1"}, {"5"}}, [][]string{{"2"}, {"3"}}, nil, [][]string{{"4"}, {"10"}}), num)
		}, "NULL;1;2;3;4;5;10"},
		{"k-way descending with NULL last", func() Stream {
			return Sorted(streams([][]string{{"5"}, {"1"}, {"NULL"}}, [][]string{{"3"}, {"2"}}), []Key{{Col: 0, Weight: -1, Kind: KindSigned, Desc: true}})
		}, "5;3;2;1;NULL"},
		{"strings by weight", func() Stream {
			// value, weight (as if upper-cased by a case-insensitive collation)
			return Sorted(streams([][]string{{"apple", "APPLE"}, {"Cherry", "CHERRY"}}, [][]string{{"Banana", "BANANA"}}), []Key{{Col: 0, Weight: 1, Kind: KindString}})
		}, "apple,APPLE;Banana,BANANA;Cherry,CHERRY"},
		{"offset and limit", func() Stream {
			return Limit(Sorted(streams([][]string{{"1"}, {"3"}, {"5"}}, [][]string{{"2"}, {"4"}}), num), 1, 3)
		}, "2;3;4"},
		{"interleaved reads every stream", func() Stream {
			return Interleaved(streams([][]string{{"a"}, {"b"}, {"c"}}, [][]string{{"x"}}, [][]string{{"p"}, {"q"}}))
		}, "a;x;p;b;q;c"},
		{"groups merge partial aggregates", func() Stream {
			// key, COUNT, SUM, MIN, AVG(shown), AVG sum, AVG count
			keys := []Key{{Col: 0, Weight: -1, Kind: KindString}}
			aggs := []Agg{
				{Func: AggCount, Col: 1, Kind: KindSigned, Weight: -1},
				{Func: AggSum, Col: 2, Kind: KindDecimal, Weight: -1},
				{Func: AggMin, Col: 3, Kind: KindSigned, Weight: -1},
				{Func: AggAvg, Col: 4, Kind: KindDecimal, Weight: -1, Sum: 5, Count: 6, Scale: 4},
			}
			return Groups(Sorted(streams(
				[][]string{{"a", "2", "3.50", "7", "1.7500", "3.50", "2"}, {"b", "1", "NULL", "NULL", "NULL", "NULL", "0"}},
				[][]string{{"a", "1", "1.25", "-2", "1.2500", "1.25", "1"}, {"c", "4", "4.00", "1", "1.0000", "4.00", "4"}},
			), keys), keys, aggs)
		}, "a,3,4.75,-2,1.5833,3.50,2;b,1,NULL,NULL,NULL,NULL,0;c,4,4.00,1,1.0000,4.00,4"},
		{"aggregates without groups", func() Stream {
			aggs := []Agg{{Func: AggCount, Col: 0, Weight: -1}, {Func: AggMax, Col: 1, Kind: KindDecimal, Weight: -1}, {Func: AggSum, Col: 2, Kind: KindFloat, Weight: -1}}
			return Groups(Interleaved(streams([][]string{{"0", "NULL", "NULL"}}, [][]string{{"5", "9.5", "0.1"}}, [][]string{{"2", "10.25", "0.2"}})), nil, aggs)
		}, "7,10.25,0.30000000000000004"},
		{"distinct drops repeats across streams", func() Stream {
			return Groups(Sorted(streams([][]string{{"1"}, {"2"}, {"4"}}, [][]string{{"1"}, {"3"}, {"4"}}), num), num, nil)
		}, "1;2;3;4"},
		{"filter and sort all", func() Stream {
			keep := func(r [][]byte) (bool, error) { return string(r[0]) != "2", nil }
			return SortAll(Filter(Interleaved(streams([][]string{{"3"}, {"1"}}, [][]string{{"2"}, {"10"}})), keep), []Key{{Col: 0, Weight: -1, Kind: KindSigned, Desc: true}})
		}, "10;3;1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := collect(t, c.build()); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestFormatFloat(t *testing.T) {
	a, b := 0.1, 0.2
	for f, want := range map[float64]string{a + b: "0.30000000000000004", 1e20: "1e20", 2.5: "2.5", -3: "-3"} {
		if got := FormatFloat(f); got != want {
			t.Errorf("FormatFloat(%v) = %s, want %s", f, got, want)
		}
	}
}
