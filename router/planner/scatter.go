package planner

import (
	"fmt"
	"math"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// errScatter marks a SELECT whose rows may be on several shards: planScatter takes over.
var errScatter = sqlerr.New(sqlerr.ErUnknownError, "router: the statement needs several shards")

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
	text        string // for EXPLAIN
}

// MergeAgg is an aggregate the merge combines from the shards' partial values.
type MergeAgg struct {
	Func        merge.AggFunc
	Col, Weight ColRef
	Sum, Count  ColRef // AVG's partial SUM and COUNT
	text        string
	Distinct    bool // over the DISTINCT values merged in two levels (mergePlan.distinct)
	Branch      int  // with mergePlan.branched: the branch whose rows this aggregate reads
	Internal    bool // AVG read by an expression: MySQL's internal value, not the printed one
}

// MergePlan is how the shards' rows become the client's.
type MergePlan struct {
	Hidden int
	// Order: each shard's rows come sorted by these keys; the proxy merges them in order.
	// Without keys, rows are interleaved as they come.
	Order []MergeKey
	// Group: rows equal on order are combined (aggregates merged; DISTINCT keeps one).
	Group bool
	// Distinct: the last distinct keys of order are the arguments of DISTINCT aggregates:
	// groups combine first per (group, value), then per group (scatter_distinct.go).
	Distinct int
	// Branched: the first of the distinct keys is a branch number, one branch per DISTINCT
	// argument list (scatter_distinct.go); each aggregate reads its branch's rows.
	Branched bool
	Aggs     []MergeAgg
	Computed []ComputedCol // evaluated over each merged group (aggexpr.go)
	Having   *havingExpr
	Post     []MergeKey // sort after grouping (ORDER BY over merged groups)
	Offset   int64
	Count    int64 // -1: no limit
}

// Steps describes the merge for EXPLAIN (plan.Merge).
func (m *MergePlan) Steps() []string {
	var out []string
	keys := func(ks []MergeKey) string {
		var b []string
		for _, k := range ks {
			d := "ASC"
			if k.Desc {
				d = "DESC"
			}
			b = append(b, k.text+" "+d)
		}
		return strings.Join(b, ", ")
	}
	switch {
	case m.Group && len(m.Aggs) == 0 && len(m.Order) > 0:
		out = append(out, "merge sorted streams by "+keys(m.Order)+", keep distinct rows")
	case m.Group:
		var a []string
		for _, g := range m.Aggs {
			a = append(a, g.text)
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
	for _, c := range m.Computed {
		out = append(out, "compute "+c.text)
	}
	if m.Having != nil {
		out = append(out, "filter HAVING "+m.Having.text)
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

// branchedProbe is the statement build restores, with LIMIT 0 (put back, with whatever
// build edits, once it is written).
func branchedProbe(ed *edits, sel *ast.SelectStmt, build func() (string, error)) (string, error) {
	defer ed.undoTo(ed.mark())
	set(ed, &sel.Limit, &ast.Limit{Count: ast.NewValueExpr(uint64(0), "", "")})
	return build()
}

// Fits reports whether every column the merge reads (sort, group and post-sort keys,
// aggregates) is among the n columns the shards returned: a shard that answers with fewer
// columns than the plan expects fails the statement instead of indexing past a row.
func (m *MergePlan) Fits(idx func(ColRef) int, n int) bool {
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
	for _, c := range m.Computed {
		if !ok(c.Col) || !ok(c.Weight) {
			return false
		}
	}
	for _, a := range m.Aggs {
		if !ok(a.Col) || !ok(a.Weight) || (a.Func == merge.AggAvg && (!ok(a.Sum) || !ok(a.Count))) {
			return false
		}
	}
	return true
}

// followsGroups reports whether sorting merged groups by post changes nothing: post is a
// prefix of the group keys, ascending, as the groups are merged (equal keys keep that order).
func followsGroups(post, groups []MergeKey) bool {
	if len(post) == 0 || len(post) > len(groups) {
		return false
	}
	for i, k := range post {
		g := groups[i]
		if k.Desc || g.Desc || k.Val != g.Val || k.Weight != g.Weight {
			return false
		}
	}
	return true
}

// MergeOf is the merge plan of a Scatter the planner built (planScatter).
func MergeOf(sp *plan.Scatter) *MergePlan { return sp.Merge.(*MergePlan) }
