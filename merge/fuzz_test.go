package merge

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"testing"
)

// fuzzInput turns fuzz bytes into shard streams: a byte reader that yields zeros once the
// input is exhausted, so every input decodes to something.
type fuzzInput struct {
	b []byte
	i int
}

func (in *fuzzInput) byte() byte {
	if in.i >= len(in.b) {
		return 0
	}
	in.i++
	return in.b[in.i-1]
}

func (in *fuzzInput) done() bool { return in.i >= len(in.b) }

// value draws a value of kind k in the text form MySQL sends for that type. raw, the values
// are arbitrary bytes instead (what a lying backend could send).
func (in *fuzzInput) value(k Kind, raw bool) []byte {
	sel := in.byte()
	if sel%8 == 0 {
		return nil // NULL
	}
	if raw {
		n := int(in.byte() % 8)
		v := make([]byte, 0, n)
		for range n {
			v = append(v, in.byte())
		}
		return v
	}
	x := int64(int8(in.byte())) // a small domain, so that keys repeat
	switch k {
	case KindSigned:
		if sel%16 == 1 {
			return strconv.AppendInt(nil, x*math.MaxInt64/128, 10)
		}
		return strconv.AppendInt(nil, x, 10)
	case KindUnsigned:
		if sel%16 == 1 {
			return strconv.AppendUint(nil, uint64(uint8(x))*(math.MaxUint64/256), 10)
		}
		return strconv.AppendUint(nil, uint64(uint8(x)), 10)
	case KindDecimal:
		return fmt.Appendf(nil, "%d.%02d", x/4, (x%4+4)%4*25)
	case KindFloat:
		return []byte(FormatFloat(float64(x) / 8 * math.Pow(10, float64(int8(in.byte())%40))))
	case KindTemporal:
		return fmt.Appendf(nil, "2026-%02d-%02d 10:00:%02d", uint8(x)%12+1, uint8(x)%28+1, uint8(x)%60)
	case KindTime:
		return fmt.Appendf(nil, "%d:%02d:%02d.%d", x*7, uint8(x)%60, uint8(x)%60, uint8(x)%10)
	}
	return []byte{'a' + byte(uint8(x)%4), 'a' + byte(uint8(x)/4%3)}
}

// fuzzRows is a Stream over rows decoded from the input.
type fuzzRows struct {
	rows [][][]byte
	i    int
}

func (r *fuzzRows) Next() ([][]byte, error) {
	if r.i >= len(r.rows) {
		return nil, nil
	}
	r.i++
	return r.rows[r.i-1], nil
}

// decodeShards reads 1..4 shard streams of rows with ncol columns of the given kinds,
// each stream sorted by keys (as each shard's ORDER BY would be).
func decodeShards(in *fuzzInput, kinds []Kind, keys []Key, raw bool) [][][][]byte {
	shards := make([][][][]byte, int(in.byte()%4)+1)
	for total := 0; !in.done() && total < 2000; total++ {
		s := int(in.byte()) % len(shards)
		row := make([][]byte, len(kinds))
		for c, k := range kinds {
			row[c] = in.value(k, raw)
		}
		shards[s] = append(shards[s], row)
	}
	for _, rows := range shards {
		slices.SortStableFunc(rows, func(a, b [][]byte) int { return CompareRows(keys, a, b) })
	}
	return shards
}

func streamsOf(shards [][][][]byte) []Stream {
	out := make([]Stream, len(shards))
	for i, rows := range shards {
		out[i] = &fuzzRows{rows: rows}
	}
	return out
}

func drainAll(t *testing.T, s Stream) [][][]byte {
	t.Helper()
	var out [][][]byte
	for {
		row, err := s.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if row == nil {
			return out
		}
		out = append(out, Clone(row))
	}
}

// FuzzMerge runs arbitrary shard rows through the k-way merge, DISTINCT (Groups without
// aggregates), partial aggregates (COUNT, SUM, MIN, MAX, AVG), LIMIT and SortAll. With
// well-formed values: the merge keeps every row and emits them in order, DISTINCT emits
// each key once in order, the merged COUNTs and SUMs equal the totals of the partials.
// With arbitrary bytes as values (a backend that lies): nothing panics and no row is lost.
func FuzzMerge(f *testing.F) {
	f.Add([]byte{0x01, 0x00, 0x02, 0x11, 0x05, 0x22, 0x31, 0x07, 0x43, 0x01, 0x09, 0x11, 0x05})
	f.Add([]byte{0x24, 0x13, 0x03, 0x01, 0x80, 0x01, 0xff, 0x02, 0x7f, 0x03, 0x00, 0x00, 0x10})
	f.Add([]byte{0x45, 0x30, 0x02, 0x09, 0x91, 0x09, 0x91, 0x09, 0x91, 0x0a, 0x91, 0x01, 0x01, 0x01})
	f.Add([]byte("k-way merge of four shards with repeated keys and NULLs"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzInput{b: data}
		mode := in.byte()
		raw := mode&0x80 != 0
		nkeys := int(mode%3) + 1
		// Columns: the keys, then a COUNT partial, a SUM partial (DECIMAL), a MIN/MAX value.
		kinds := make([]Kind, nkeys, nkeys+3)
		keys := make([]Key, nkeys)
		for i := range keys {
			kinds[i] = Kind(in.byte() % 7)
			keys[i] = Key{Col: i, Weight: -1, Kind: kinds[i], Desc: in.byte()%2 == 1}
		}
		kinds = append(kinds, KindUnsigned, KindDecimal, KindSigned, KindSigned)
		shards := decodeShards(in, kinds, keys, raw)
		if !raw { // partial counts are small non-negative integers, never NULL
			for _, rows := range shards {
				for _, row := range rows {
					row[nkeys] = strconv.AppendUint(nil, uint64(len(row[nkeys+1])+len(row[0])), 10)
				}
			}
		}
		var all [][][]byte
		for _, rows := range shards {
			all = append(all, rows...)
		}

		merged := drainAll(t, Sorted(streamsOf(shards), keys))
		if len(merged) != len(all) {
			t.Fatalf("merge returned %d rows of %d", len(merged), len(all))
		}
		if !raw {
			checkSorted(t, keys, merged, false)
		}
		distinct := drainAll(t, Groups(Sorted(streamsOf(shards), keys), keys, nil))
		if !raw {
			checkSorted(t, keys, distinct, true)
			if want := countDistinct(keys, merged); len(distinct) != want {
				t.Fatalf("DISTINCT returned %d rows, want %d", len(distinct), want)
			}
		}
		aggs := []Agg{
			{Func: AggCount, Col: nkeys}, {Func: AggSum, Col: nkeys + 1, Kind: KindDecimal},
			{Func: AggMin, Col: nkeys + 2, Kind: KindSigned, Weight: -1},
			{Func: AggMax, Col: nkeys + 3, Kind: KindSigned, Weight: -1},
		}
		grouped := drainAll(t, Groups(Sorted(streamsOf(shards), keys), keys, aggs))
		if !raw {
			checkSorted(t, keys, grouped, true)
			checkGroups(t, keys, merged, grouped, nkeys)
		}
		off, n := int64(in.byte()%8), int64(int8(in.byte()))
		limited := drainAll(t, Limit(Sorted(streamsOf(shards), keys), off, n))
		want := max(int64(len(all))-off, 0)
		if n >= 0 {
			want = min(want, n)
		}
		if int64(len(limited)) != want {
			t.Fatalf("LIMIT %d, %d returned %d rows of %d, want %d", off, n, len(limited), len(all), want)
		}
		sortedAll := drainAll(t, SortAll(&fuzzRows{rows: all}, keys))
		if len(sortedAll) != len(all) {
			t.Fatalf("SortAll returned %d rows of %d", len(sortedAll), len(all))
		}
		if !raw {
			checkSorted(t, keys, sortedAll, false)
		}
		checkBounded(t, in, keys, all, sortedAll, raw)
	})
}

func checkSorted(t *testing.T, keys []Key, rows [][][]byte, strict bool) {
	t.Helper()
	for i := 1; i < len(rows); i++ {
		c := CompareRows(keys, rows[i-1], rows[i])
		if c > 0 || (strict && c == 0) {
			t.Fatalf("rows %d and %d out of order (strict %v): %q, %q", i-1, i, strict, rows[i-1], rows[i])
		}
	}
}

func countDistinct(keys []Key, sorted [][][]byte) int {
	n := 0
	for i := range sorted {
		if i == 0 || CompareRows(keys, sorted[i-1], sorted[i]) != 0 {
			n++
		}
	}
	return n
}

// checkGroups compares each merged group with the group computed naively from the merged
// rows (same order): COUNT adds up the partial counts, SUM the partial sums (exactly), MIN and
// MAX are the least and greatest non-NULL partials.
func checkGroups(t *testing.T, keys []Key, merged, groups [][][]byte, nkeys int) {
	t.Helper()
	g := -1
	var count int64
	var sum *big.Rat
	var lo, hi []byte
	check := func() {
		if g < 0 {
			return
		}
		row := groups[g]
		if got := string(row[nkeys]); got != strconv.FormatInt(count, 10) {
			t.Fatalf("group %d: COUNT %s, want %d", g, got, count)
		}
		switch {
		case sum == nil && row[nkeys+1] != nil:
			t.Fatalf("group %d: SUM %q, want NULL", g, row[nkeys+1])
		case sum != nil:
			r, ok := new(big.Rat).SetString(string(row[nkeys+1]))
			if !ok || r.Cmp(sum) != 0 {
				t.Fatalf("group %d: SUM %q, want %s", g, row[nkeys+1], sum.RatString())
			}
		}
		if string(row[nkeys+2]) != string(lo) || (row[nkeys+2] == nil) != (lo == nil) {
			t.Fatalf("group %d: MIN %q, want %q", g, row[nkeys+2], lo)
		}
		if string(row[nkeys+3]) != string(hi) || (row[nkeys+3] == nil) != (hi == nil) {
			t.Fatalf("group %d: MAX %q, want %q", g, row[nkeys+3], hi)
		}
	}
	for i, row := range merged {
		if i == 0 || CompareRows(keys, merged[i-1], row) != 0 {
			check()
			g++
			if g >= len(groups) {
				t.Fatalf("more groups than the %d merged", len(groups))
			}
			count, sum, lo, hi = 0, nil, nil, nil
		}
		n, _ := strconv.ParseInt(string(row[nkeys]), 10, 64)
		count += n
		if v := row[nkeys+1]; v != nil {
			r, ok := new(big.Rat).SetString(string(v))
			if !ok {
				t.Fatalf("partial SUM %q is not a number", v)
			}
			if sum == nil {
				sum = new(big.Rat)
			}
			sum.Add(sum, r)
		}
		if v := row[nkeys+2]; v != nil && (lo == nil || Compare(KindSigned, v, lo) < 0) {
			lo = v
		}
		if v := row[nkeys+3]; v != nil && (hi == nil || Compare(KindSigned, v, hi) > 0) {
			hi = v
		}
	}
	check()
	if g+1 != len(groups) {
		t.Fatalf("%d merged groups, want %d", len(groups), g+1)
	}
}

// checkBounded: TopN returns the first n rows a stable sort would (exactly, with
// well-formed values), and TopN and SortAllAtMost fail with ErrTooManyRows exactly when
// they would have to hold more rows than their bound.
func checkBounded(t *testing.T, in *fuzzInput, keys []Key, all, sortedAll [][][]byte, raw bool) {
	t.Helper()
	n, bound := int64(in.byte()%32), int(in.byte()%16)
	top, err := drainErr(TopN(&fuzzRows{rows: all}, keys, n, bound))
	want := min(n, int64(len(all)))
	switch {
	case bound > 0 && want > int64(bound):
		if !errors.Is(err, ErrTooManyRows) {
			t.Fatalf("TopN %d over %d rows with bound %d: %v, want ErrTooManyRows", n, len(all), bound, err)
		}
	case err != nil:
		t.Fatalf("TopN %d over %d rows with bound %d: %v", n, len(all), bound, err)
	case int64(len(top)) != want:
		t.Fatalf("TopN %d over %d rows returned %d", n, len(all), len(top))
	case !raw:
		for i := range top {
			if !slices.EqualFunc(top[i], sortedAll[i], bytes.Equal) {
				t.Fatalf("TopN %d row %d is %q, a stable sort's is %q", n, i, top[i], sortedAll[i])
			}
		}
	}
	held, err := drainErr(SortAllAtMost(&fuzzRows{rows: all}, keys, bound))
	switch {
	case bound > 0 && len(all) > bound:
		if !errors.Is(err, ErrTooManyRows) {
			t.Fatalf("SortAllAtMost %d over %d rows: %v, want ErrTooManyRows", bound, len(all), err)
		}
	case err != nil || len(held) != len(all):
		t.Fatalf("SortAllAtMost %d over %d rows: %d rows, %v", bound, len(all), len(held), err)
	}
}

func drainErr(s Stream) ([][][]byte, error) {
	var out [][][]byte
	for {
		row, err := s.Next()
		if err != nil || row == nil {
			return out, err
		}
		out = append(out, Clone(row))
	}
}
