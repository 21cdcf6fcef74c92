package merge

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
)

// countingRows yields n rows (value, arrival index) and counts how many it produced.
type countingRows struct {
	vals []int
	i    int
}

func (r *countingRows) Next() ([][]byte, error) {
	if r.i >= len(r.vals) {
		return nil, nil
	}
	row := [][]byte{[]byte(strconv.Itoa(r.vals[r.i])), []byte(strconv.Itoa(r.i))}
	r.i++
	return row, nil
}

func rowsText(t *testing.T, s Stream) []string {
	t.Helper()
	var out []string
	for {
		row, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if row == nil {
			return out
		}
		out = append(out, string(row[0])+"#"+string(row[1]))
	}
}

// TestTopN: TopN returns exactly what a stable sort followed by LIMIT returns (equal keys
// keep their arrival order), ascending and descending, for limits below, at and above the
// number of rows.
func TestTopN(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, desc := range []bool{false, true} {
		keys := []Key{{Col: 0, Weight: -1, Kind: KindSigned, Desc: desc}}
		for _, size := range []int{0, 1, 7, 100, 1000} {
			vals := make([]int, size)
			for i := range vals {
				vals[i] = rng.IntN(20) // many ties
			}
			for _, n := range []int64{0, 1, 3, 10, 99, 1000, 5000} {
				t.Run(fmt.Sprintf("desc=%v/rows=%d/n=%d", desc, size, n), func(t *testing.T) {
					want := rowsText(t, Limit(SortAll(&countingRows{vals: vals}, keys), 0, n))
					got := rowsText(t, TopN(&countingRows{vals: vals}, keys, n, 0))
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("TopN\n got  %v\n want %v", got, want)
					}
				})
			}
		}
	}
}

// TestMergeHoldsBounded: with a bound of max rows, TopN with a LIMIT below it reads any
// number of groups while holding only LIMIT of them; SortAllAtMost and a TopN whose LIMIT exceeds
// the bound fail with ErrTooManyRows once they would hold more.
func TestMergeHoldsBounded(t *testing.T) {
	vals := make([]int, 200_000)
	for i := range vals {
		vals[i] = (i * 7919) % 100_003
	}
	keys := []Key{{Col: 0, Weight: -1, Kind: KindSigned, Desc: true}}
	got := rowsText(t, TopN(&countingRows{vals: vals}, keys, 3, 1000))
	if len(got) != 3 || got[0][:6] != "100002" {
		t.Errorf("top 3 of 200,000 under a bound of 1,000: %v", got)
	}
	for name, s := range map[string]Stream{
		"SortAllAtMost":    SortAllAtMost(&countingRows{vals: vals}, keys, 1000),
		"TopN above bound": TopN(&countingRows{vals: vals}, keys, 5000, 1000),
	} {
		_, err := s.Next()
		if !errors.Is(err, ErrTooManyRows) {
			t.Errorf("%s: %v, want ErrTooManyRows", name, err)
		}
	}
	if got := rowsText(t, SortAllAtMost(&countingRows{vals: vals[:1000]}, keys, 1000)); len(got) != 1000 {
		t.Errorf("SortAllAtMost of exactly its bound: %d rows", len(got))
	}
}
