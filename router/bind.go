package router

import (
	"slices"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// bindParams replaces a statement's ? placeholders by literals of the bound values (given
// in the placeholders' text order).
func bindParams(st ast.StmtNode, params []wire.Param) error {
	var markers planner.MarkerCollector
	st.Accept(&markers)
	slices.SortFunc(markers, func(x, y *test_driver.ParamMarkerExpr) int { return x.Offset - y.Offset })
	if len(markers) != len(params) {
		return sqlerr.New(sqlerr.ErWrongArguments, "Incorrect arguments to mysqld_stmt_execute")
	}
	values := make(map[*test_driver.ParamMarkerExpr]ast.ExprNode, len(markers))
	for i, m := range markers {
		v, err := planner.ParamLiteral(params[i])
		if err != nil {
			return err
		}
		values[m] = ast.NewValueExpr(v, "", "")
	}
	st.Accept(markerReplacer(values))
	return nil
}

type markerReplacer map[*test_driver.ParamMarkerExpr]ast.ExprNode

func (r markerReplacer) Enter(n ast.Node) (ast.Node, bool) { return n, false }

func (r markerReplacer) Leave(n ast.Node) (ast.Node, bool) {
	if m, ok := n.(*test_driver.ParamMarkerExpr); ok {
		if v, ok := r[m]; ok {
			return v, true
		}
	}
	return n, true
}
