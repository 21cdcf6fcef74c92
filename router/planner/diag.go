package planner

import (
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	pmysql "github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
	"github.com/pingcap/tidb/pkg/parser/types"
)

// Diagnostics is what MySQL reports about a session's previous statement. The backend
// connection that ran it may serve another session right after, so the proxy keeps it:
// SHOW WARNINGS, @@warning_count, ROW_COUNT() and FOUND_ROWS() are answered from here.
type Diagnostics struct {
	Warnings  [][]*string // Level, Code, Message
	Count     int         // @@warning_count (errors included)
	Errors    int         // @@error_count
	RowCount  int64       // ROW_COUNT(): affected rows, -1 after a result set or an error
	FoundRows int64       // FOUND_ROWS(): rows of the last result set
}

// typeSessionColumn gives a result column the proxy fills in with a value of the session
// (written into the statement as a literal, which MariaDB types INT) the column definition
// MariaDB gives the function: LAST_INSERT_ID() is BIGINT UNSIGNED, ROW_COUNT() BIGINT, both
// NOT NULL, length 21. IFNULL(literal, the function) has that type and the literal's value;
// the function the backend evaluates is only there for the type. Only a column is typed:
// elsewhere the literal stays, for routing.
func (a *Analyzer) typeSessionColumn(f *ast.SelectField) {
	ve, ok := f.Expr.(*test_driver.ValueExpr)
	if !ok {
		return
	}
	i := slices.IndexFunc(a.SessionVals, func(v SessionVal) bool { return v.Node == ve })
	if i < 0 {
		return
	}
	var v ast.ExprNode = ve
	name := a.SessionVals[i].Name
	switch name {
	case "last_insert_id":
		tp := types.NewFieldType(pmysql.TypeLonglong)
		tp.AddFlag(pmysql.UnsignedFlag)
		v = &ast.FuncCastExpr{Expr: ve, Tp: tp, FunctionType: ast.CastFunction}
	case "row_count":
	default:
		return
	}
	set(&a.ed, &f.Expr, ast.ExprNode(&ast.FuncCallExpr{FnName: ast.NewCIStr("IFNULL"), Args: []ast.ExprNode{v, &ast.FuncCallExpr{FnName: ast.NewCIStr(strings.ToUpper(name))}}}))
}
