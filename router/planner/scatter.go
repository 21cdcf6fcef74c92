package planner

import (
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// errScatter marks a SELECT whose rows may be on several shards: planScatter takes over.
var errScatter = sqlerr.New(sqlerr.ErUnknownError, "router: the statement needs several shards")

// branchedProbe is the statement build restores, with LIMIT 0 (put back, with whatever
// build edits, once it is written).
func branchedProbe(ed *edits, sel *ast.SelectStmt, build func() (string, error)) (string, error) {
	defer ed.undoTo(ed.mark())
	set(ed, &sel.Limit, &ast.Limit{Count: ast.NewValueExpr(uint64(0), "", "")})
	return build()
}

// followsGroups reports whether sorting merged groups by post changes nothing: post is a
// prefix of the group keys, ascending, as the groups are merged (equal keys keep that order).
func followsGroups(post, groups []plan.MergeKey) bool {
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
