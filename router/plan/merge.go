package plan

import (
	"fmt"
	"math"
	"strings"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/wire"
)

// ColRef names a column of the shards' results: >= 0 is a column the client sees; < 0 is
// hidden column -1-h, counted from the first hidden column (hidden columns come last).
type ColRef int

// HiddenCol names hidden column h (counted from the first hidden column).
func HiddenCol(h int) ColRef { return ColRef(-1 - h) }

// NoCol is a ColRef naming no column.
const NoCol ColRef = math.MinInt32

// MergeKey is a sort or group key: the value's column and, for strings, the column holding
// its WEIGHT_STRING (the collation's sort key).
type MergeKey struct {
	Val, Weight ColRef
	Desc        bool
	Text        string // for EXPLAIN
}

// MergeAgg is an aggregate the merge combines from the shards' partial values.
type MergeAgg struct {
	Func        merge.AggFunc
	Col, Weight ColRef
	Sum, Count  ColRef // AVG's partial SUM and COUNT
	Text        string // for EXPLAIN
	Distinct    bool   // over the DISTINCT values merged in two levels (Merge.Distinct)
	Branch      int    // with Merge.Branched: the branch whose rows this aggregate reads
	Internal    bool   // AVG read by an expression: MySQL's internal value, not the printed one
}

// Merge is the merge program of a Scatter: how the shards' rows become the client's. The
// planner builds it; the executor runs it over the shards' row streams (router/engine's
// MergeRows), in this order: merge the sorted (or interleaved) streams, combine groups,
// evaluate Rows over each merged row, sort by Post, apply the limit, drop hidden columns.
type Merge struct {
	Hidden int
	// Order: each shard's rows come sorted by these keys; the proxy merges them in order.
	// Without keys, rows are interleaved as they come.
	Order []MergeKey
	// Group: rows equal on Order are combined (aggregates merged; DISTINCT keeps one).
	Group bool
	// Distinct: the last Distinct keys of Order are the arguments of DISTINCT aggregates:
	// groups combine first per (group, value), then per group.
	Distinct int
	// Branched: the first of the distinct keys is a branch number, one branch per DISTINCT
	// argument list; each aggregate reads its branch's rows.
	Branched bool
	Aggs     []MergeAgg
	// Rows computes columns over each merged row (expressions over aggregates) and filters
	// the rows (HAVING); nil for none.
	Rows   RowProgram
	Post   []MergeKey // sort after grouping (ORDER BY over merged groups)
	Offset int64
	Count  int64 // -1: no limit
}

// RowProgram is what a merge evaluates over each merged row: columns computed from the
// merged aggregates and the HAVING condition. The planner compiles it from the statement's
// expressions; it is read-only and shared by every execution.
type RowProgram interface {
	// Steps describes it for EXPLAIN, one step a line.
	Steps() []string
	// Columns are the columns it writes (a computed value, the sort key of a string one).
	Columns() []ColRef
	// Bind prepares an evaluation over rows of these kinds and column definitions, col
	// mapping a ColRef to its index in a row. It is used by one goroutine.
	Bind(kinds []merge.Kind, defs []wire.ColDef, col func(ColRef) int) RowEval
}

// RowEval evaluates a RowProgram over merged rows.
type RowEval interface {
	// Eval writes the computed columns into row and reports whether the row is kept.
	Eval(row [][]byte) bool
}

// Steps describes the merge for EXPLAIN.
func (m *Merge) Steps() []string {
	var out []string
	keys := func(ks []MergeKey) string {
		var b []string
		for _, k := range ks {
			d := "ASC"
			if k.Desc {
				d = "DESC"
			}
			b = append(b, k.Text+" "+d)
		}
		return strings.Join(b, ", ")
	}
	switch {
	case m.Group && len(m.Aggs) == 0 && len(m.Order) > 0:
		out = append(out, "merge sorted streams by "+keys(m.Order)+", keep distinct rows")
	case m.Group:
		var a []string
		for _, g := range m.Aggs {
			a = append(a, g.Text)
		}
		s := "merge partial aggregates " + strings.Join(a, ", ")
		if m.Distinct > 0 {
			g := len(m.Order) - m.Distinct
			s = "merge sorted streams by " + keys(m.Order) + ", combine rows per distinct " + keys(m.Order[g:]) + ", then " + s
			if g > 0 {
				s += " per group of " + keys(m.Order[:g])
			}
		} else if len(m.Order) > 0 {
			s = "merge sorted streams by " + keys(m.Order) + ", " + s + " per group"
		}
		out = append(out, s)
	case len(m.Order) > 0:
		out = append(out, "merge sorted streams by "+keys(m.Order))
	default:
		out = append(out, "concatenate streams")
	}
	if m.Branched {
		out = append(out, "column definitions from the first shard's statement with LIMIT 0")
	}
	if m.Rows != nil {
		out = append(out, m.Rows.Steps()...)
	}
	if len(m.Post) > 0 {
		out = append(out, "sort merged rows by "+keys(m.Post))
	}
	if m.Offset > 0 || m.Count >= 0 {
		out = append(out, fmt.Sprintf("limit offset %d count %d", m.Offset, m.Count))
	}
	if m.Hidden > 0 {
		out = append(out, fmt.Sprintf("drop %d hidden columns", m.Hidden))
	}
	return out
}

// Fits reports whether every column the merge reads (sort, group and post-sort keys,
// aggregates, the columns its row program writes) is among the n columns the shards
// returned: a shard that answers with fewer columns than the plan expects fails the
// statement instead of indexing past a row.
func (m *Merge) Fits(idx func(ColRef) int, n int) bool {
	ok := func(r ColRef) bool {
		if r == NoCol {
			return true
		}
		i := idx(r)
		return i >= 0 && i < n
	}
	for _, ks := range [][]MergeKey{m.Order, m.Post} {
		for _, k := range ks {
			if !ok(k.Val) || !ok(k.Weight) {
				return false
			}
		}
	}
	if m.Rows != nil {
		for _, c := range m.Rows.Columns() {
			if !ok(c) {
				return false
			}
		}
	}
	for _, a := range m.Aggs {
		if !ok(a.Col) || !ok(a.Weight) || (a.Func == merge.AggAvg && (!ok(a.Sum) || !ok(a.Count))) {
			return false
		}
	}
	return true
}
