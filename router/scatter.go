package router

import (
	"fmt"
	"math"
	"strings"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// errScatter marks a SELECT whose rows may be on several shards: planScatter takes over.
var errScatter = sqlerr.New(sqlerr.ErUnknownError, "router: the statement needs several shards")

// colRef names a column of the shards' results: >= 0 is a column the client sees; < 0 is
// hidden column -1-h, counted from the first hidden column (hidden columns come last).
type colRef int

func hiddenCol(h int) colRef { return colRef(-1 - h) }

// noCol is a colRef naming no column.
const noCol colRef = math.MinInt32

// mergeKey is a sort or group key: the value's column and, for strings, the column holding
// its WEIGHT_STRING (the collation's sort key).
type mergeKey struct {
	val, weight colRef
	desc        bool
	text        string // for EXPLAIN
}

type mergeAgg struct {
	fn          merge.AggFunc
	col, weight colRef
	sum, count  colRef // AVG's partial SUM and COUNT
	text        string
	distinct    bool // over the DISTINCT values merged in two levels (mergePlan.distinct)
	branch      int  // with mergePlan.branched: the branch whose rows this aggregate reads
	internal    bool // AVG read by an expression: MySQL's internal value, not the printed one
}

// mergePlan is how the shards' rows become the client's.
type mergePlan struct {
	hidden int
	// order: each shard's rows come sorted by these keys; the proxy merges them in order.
	// Without keys, rows are interleaved as they come.
	order []mergeKey
	// group: rows equal on order are combined (aggregates merged; DISTINCT keeps one).
	group bool
	// distinct: the last distinct keys of order are the arguments of DISTINCT aggregates:
	// groups combine first per (group, value), then per group (scatter_distinct.go).
	distinct int
	// branched: the first of the distinct keys is a branch number, one branch per DISTINCT
	// argument list (scatter_distinct.go); each aggregate reads its branch's rows.
	branched bool
	aggs     []mergeAgg
	computed []computedCol // evaluated over each merged group (aggexpr.go)
	having   *havingExpr
	post     []mergeKey // sort after grouping (ORDER BY over merged groups)
	offset   int64
	count    int64 // -1: no limit
}

// mergeOf is the merge plan of a Scatter the planner built (planScatter).
func mergeOf(sp *plan.Scatter) *mergePlan { return sp.Merge.(*mergePlan) }

// Steps describes the merge for EXPLAIN (plan.Merge).
func (m *mergePlan) Steps() []string {
	var out []string
	keys := func(ks []mergeKey) string {
		var b []string
		for _, k := range ks {
			d := "ASC"
			if k.desc {
				d = "DESC"
			}
			b = append(b, k.text+" "+d)
		}
		return strings.Join(b, ", ")
	}
	switch {
	case m.group && len(m.aggs) == 0 && len(m.order) > 0:
		out = append(out, "merge sorted streams by "+keys(m.order)+", keep distinct rows")
	case m.group:
		var a []string
		for _, g := range m.aggs {
			a = append(a, g.text)
		}
		s := "merge partial aggregates " + strings.Join(a, ", ")
		if m.distinct > 0 {
			g := len(m.order) - m.distinct
			s = "merge sorted streams by " + keys(m.order) + ", combine rows per distinct " + keys(m.order[g:]) + ", then " + s
			if g > 0 {
				s += " per group of " + keys(m.order[:g])
			}
		} else if len(m.order) > 0 {
			s = "merge sorted streams by " + keys(m.order) + ", " + s + " per group"
		}
		out = append(out, s)
	case len(m.order) > 0:
		out = append(out, "merge sorted streams by "+keys(m.order))
	default:
		out = append(out, "concatenate streams")
	}
	if m.branched {
		out = append(out, "column definitions from the first shard's statement with LIMIT 0")
	}
	for _, c := range m.computed {
		out = append(out, "compute "+c.text)
	}
	if m.having != nil {
		out = append(out, "filter HAVING "+m.having.text)
	}
	if len(m.post) > 0 {
		out = append(out, "sort merged rows by "+keys(m.post))
	}
	if m.offset > 0 || m.count >= 0 {
		out = append(out, fmt.Sprintf("limit offset %d count %d", m.offset, m.count))
	}
	if m.hidden > 0 {
		out = append(out, fmt.Sprintf("drop %d hidden columns", m.hidden))
	}
	return out
}
