package planner

import (
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// errScatter marks a SELECT whose rows may be on several shards: planScatter takes over.
var errScatter = sqlerr.New(sqlerr.ErUnknownError, "router: the statement needs several shards")

// The merge program's types are router/plan's; these names keep the planner's code short.
type (
	// ColRef names a column of the shards' results (plan.ColRef).
	ColRef = plan.ColRef
	// MergeKey is a sort or group key (plan.MergeKey).
	MergeKey = plan.MergeKey
	// MergeAgg is an aggregate the merge combines (plan.MergeAgg).
	MergeAgg = plan.MergeAgg
	// MergePlan is a Scatter's merge program (plan.Merge).
	MergePlan = plan.Merge
)

// NoCol is a ColRef naming no column (plan.NoCol).
const NoCol = plan.NoCol

// HiddenCol names hidden column h (plan.HiddenCol).
func HiddenCol(h int) ColRef { return plan.HiddenCol(h) }

// branchedProbe is the statement build restores, with LIMIT 0 (put back, with whatever
// build edits, once it is written).
func branchedProbe(ed *edits, sel *ast.SelectStmt, build func() (string, error)) (string, error) {
	defer ed.undoTo(ed.mark())
	set(ed, &sel.Limit, &ast.Limit{Count: ast.NewValueExpr(uint64(0), "", "")})
	return build()
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
func MergeOf(sp *plan.Scatter) *MergePlan { return sp.Merge }
