package planner

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// MarkerCollector collects a statement's ? markers in the order an ast walk meets them.
type MarkerCollector []*test_driver.ParamMarkerExpr

// Enter collects n when it is a ? marker.
func (c *MarkerCollector) Enter(n ast.Node) (ast.Node, bool) {
	if m, ok := n.(*test_driver.ParamMarkerExpr); ok {
		*c = append(*c, m)
	}
	return n, false
}

func (c *MarkerCollector) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// ParamLiteral decodes a binary-protocol parameter into a Go value the parser's literals
// hold.
func ParamLiteral(p wire.Param) (any, error) {
	if p.Null {
		return nil, nil
	}
	b := p.Value
	switch p.Type {
	case mysql.MYSQL_TYPE_FLOAT:
		if len(b) < 4 {
			break
		}
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), nil
	case mysql.MYSQL_TYPE_DOUBLE:
		if len(b) < 8 {
			break
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_YEAR, mysql.MYSQL_TYPE_LONG,
		mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONGLONG:
		v, err := paramValue(p)
		if err != nil {
			return nil, err
		}
		if v.IsInt {
			return v.Int, nil
		}
		return v.Str, nil // an unsigned value above MaxInt64, as digits
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIMESTAMP:
		return binaryDateTimeText(b), nil
	default:
		s, _, n := wire.LenencString(b)
		if n == 0 {
			break
		}
		return string(s), nil
	}
	return nil, sqlerr.New(sqlerr.ErMalformedPacket, "Malformed communication packet")
}

// binaryDateTimeText formats a binary DATE/DATETIME value with its microseconds.
func binaryDateTimeText(b []byte) string {
	s := binaryDate(b)
	if len(b) >= 12 && b[0] >= 11 {
		us := binary.LittleEndian.Uint32(b[8:])
		if us != 0 {
			s += "." + string([]byte{
				byte('0' + us/100000%10), byte('0' + us/10000%10), byte('0' + us/1000%10),
				byte('0' + us/100%10), byte('0' + us/10%10), byte('0' + us%10),
			})
		}
	}
	return s
}

// BindParams replaces a statement's ? placeholders by literals of the bound values (given
// in the placeholders' text order).
func BindParams(st ast.StmtNode, params []wire.Param) error {
	var markers MarkerCollector
	st.Accept(&markers)
	slices.SortFunc(markers, func(x, y *test_driver.ParamMarkerExpr) int { return x.Offset - y.Offset })
	if len(markers) != len(params) {
		return sqlerr.New(sqlerr.ErWrongArguments, "Incorrect arguments to mysqld_stmt_execute")
	}
	values := make(map[*test_driver.ParamMarkerExpr]ast.ExprNode, len(markers))
	for i, m := range markers {
		v, err := ParamLiteral(params[i])
		if err != nil {
			return err
		}
		values[m] = ast.NewValueExpr(v, "", "")
	}
	st.Accept(MarkerReplacer(values))
	return nil
}

// MarkerReplacer replaces the ? markers it maps with their expressions as an ast walk
// leaves them.
type MarkerReplacer map[*test_driver.ParamMarkerExpr]ast.ExprNode

func (r MarkerReplacer) Enter(n ast.Node) (ast.Node, bool) { return n, false }

func (r MarkerReplacer) Leave(n ast.Node) (ast.Node, bool) {
	if m, ok := n.(*test_driver.ParamMarkerExpr); ok {
		if v, ok := r[m]; ok {
			return v, true
		}
	}
	return n, true
}

// BindLiterals writes each parameter's value into its literal slot (LiteralSlots), as
// BindParams writes a fresh literal in each marker's place.
func BindLiterals(lits []*test_driver.ValueExpr, params []wire.Param) error {
	if len(lits) != len(params) {
		return sqlerr.New(sqlerr.ErWrongArguments, "Incorrect arguments to mysqld_stmt_execute")
	}
	for i, p := range params {
		v, err := ParamLiteral(p)
		if err != nil {
			return err
		}
		*lits[i] = *ast.NewValueExpr(v, "", "").(*test_driver.ValueExpr)
	}
	return nil
}
