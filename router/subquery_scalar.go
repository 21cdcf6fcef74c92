package router

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/charset"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Uncorrelated scalar subqueries over sharded tables whose rows may be on several shards run
// first, like IN and EXISTS subqueries (subquery_bind.go), and are replaced by their value
// written as a literal of the subquery column's type: MariaDB then compares, computes and
// describes it as it would the subquery's value. A subquery answering no row is NULL of that
// type; one answering several rows becomes (SELECT v1 UNION ALL SELECT v2), which fails
// with 1242 "Subquery returns more than 1 row" exactly when MariaDB evaluates it (it does
// not when no row of the outer statement needs it).

// bindMode says how a bound value is written: where it sits decides what must be exact.
type bindMode int

const (
	// bindField: in a select list, where the value's type is the result column's type.
	bindField bindMode = iota
	// bindValue: in a WHERE or an UPDATE's SET: typed, but integers stay plain literals so
	// that a shard key compared with one still routes by its value.
	bindValue
	// bindPlain: in a HAVING, which the proxy evaluates itself over merged groups: plain
	// literals only.
	bindPlain
	// bindRow: a value of an INSERT's row, converted to its column's type by the insert:
	// plain literals (a shard key among them routes the row), byte strings as their bytes.
	bindRow
)

// subqueryCol is what a bound value's literal needs of its column definition.
type subqueryCol struct {
	typ       byte
	flags     uint16
	decimals  byte
	collation uint16
	length    uint32
}

func (c subqueryCol) kind() merge.Kind { return merge.KindOf(c.typ, c.flags) }

// parseSubqueryCol reads a column definition (wire.ParseColDef has checked its layout).
func parseSubqueryCol(p []byte) (subqueryCol, bool) {
	for range 6 { // catalog, schema, table, org_table, name, org_name
		_, _, n := wire.LenencString(p)
		if n <= 0 || n > len(p) {
			return subqueryCol{}, false
		}
		p = p[n:]
	}
	if len(p) < 11 {
		return subqueryCol{}, false
	}
	// 0x0c, collation(2), length(4), type, flags(2), decimals
	return subqueryCol{collation: binary.LittleEndian.Uint16(p[1:]), length: binary.LittleEndian.Uint32(p[3:]),
		typ: p[7], flags: binary.LittleEndian.Uint16(p[8:]), decimals: p[10]}, true
}

// typedLiteral is v, a text-protocol value of column c (nil for NULL), as an expression of
// c's type. ps parses the forms written as SQL; the value itself is never part of that text
// (it replaces the ? of the form), so no quoting depends on the session's sql_mode.
func typedLiteral(ps *parser.Parser, v []byte, c subqueryCol, mode bindMode) (ast.ExprNode, error) {
	plain := literalOf(v, c.kind())
	binaryString := c.collation == collationBinary && isStringType(c.typ)
	if mode == bindPlain || (mode == bindRow && (!binaryString || v == nil)) {
		return plain, nil
	}
	form := literalForm(v, c, mode)
	if form == "" {
		return plain, nil
	}
	val := plain
	if binaryString {
		val = ast.NewValueExpr(hex.EncodeToString(v), "", "") // UNHEX('...'): bytes, not characters
	}
	return parseForm(ps, form, val)
}

// literalForm is the SQL form of a value of c's type with ? for the value, "" for the plain
// literal.
func literalForm(v []byte, c subqueryCol, mode bindMode) string {
	unsigned := c.flags&mysql.UNSIGNED_FLAG != 0
	switch c.typ {
	case mysql.MYSQL_TYPE_NULL:
		return ""
	case mysql.MYSQL_TYPE_LONGLONG:
		big := "9223372036854775807"
		if unsigned {
			big = "18446744073709551615"
		}
		switch {
		case v == nil:
			return "IF(FALSE, " + big + ", NULL)"
		case mode == bindField: // a small literal is INT; MariaDB describes the subquery's BIGINT
			return "IFNULL(?, " + big + ")"
		}
		return ""
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_YEAR:
		if v != nil {
			return ""
		}
		if unsigned {
			return "CAST(NULL AS UNSIGNED)"
		}
		return "CAST(NULL AS SIGNED)"
	case mysql.MYSQL_TYPE_DECIMAL, mysql.MYSQL_TYPE_NEWDECIMAL:
		prec, scale := decimalPrecision(c)
		return fmt.Sprintf("CAST(? AS DECIMAL(%d,%d))", prec, scale)
	case mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE:
		if v == nil {
			return "CAST(NULL AS DOUBLE)"
		}
		return ""
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		return "CAST(? AS DATE)"
	case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP2:
		return fmt.Sprintf("CAST(? AS DATETIME(%d))", min(c.decimals, 6))
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		return fmt.Sprintf("CAST(? AS TIME(%d))", min(c.decimals, 6))
	}
	if c.collation == collationBinary || !isStringType(c.typ) {
		if v == nil {
			return "CAST(NULL AS BINARY)"
		}
		return "UNHEX(?)"
	}
	coll, err := charset.GetCollationByID(int(c.collation))
	if err != nil {
		return "" // a collation the parser does not know: the connection's
	}
	// Explicitly collated: the collation the column definition names (the column's own, or
	// character_set_results' default when the server converted the value).
	return "CONVERT(? USING " + coll.CharsetName + ") COLLATE " + coll.Name
}

func isStringType(t byte) bool {
	switch t {
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET,
		mysql.MYSQL_TYPE_TINY_BLOB, mysql.MYSQL_TYPE_MEDIUM_BLOB, mysql.MYSQL_TYPE_LONG_BLOB, mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_JSON:
		return true
	}
	return false
}

// decimalPrecision is a DECIMAL column's precision and scale from its display length, which
// counts a sign (unless unsigned) and a decimal point (when it has a scale).
func decimalPrecision(c subqueryCol) (int, int) {
	scale := int(min(c.decimals, 38))
	prec := int(min(c.length, 1000))
	if c.flags&mysql.UNSIGNED_FLAG == 0 {
		prec--
	}
	if scale > 0 {
		prec--
	}
	return min(max(prec, scale, 1), 65), scale
}

// parseForm parses form (an expression with at most one ?) and puts val in place of the ?.
func parseForm(ps *parser.Parser, form string, val ast.ExprNode) (ast.ExprNode, error) {
	stmts, _, err := ps.Parse("SELECT "+form, "", "")
	if err != nil || len(stmts) != 1 {
		return nil, sqlerr.New(sqlerr.ErUnknownError, "router: writing a subquery's value as %s: %v", form, err)
	}
	sel, ok := stmts[0].(*ast.SelectStmt)
	if !ok || sel.Fields == nil || len(sel.Fields.Fields) != 1 {
		return nil, sqlerr.New(sqlerr.ErUnknownError, "router: writing a subquery's value as %s", form)
	}
	var markers planner.MarkerCollector
	sel.Accept(&markers)
	values := map[*test_driver.ParamMarkerExpr]ast.ExprNode{}
	for _, m := range markers {
		values[m] = val
	}
	e := sel.Fields.Fields[0].Expr
	n, _ := e.Accept(planner.MarkerReplacer(values))
	return n.(ast.ExprNode), nil
}

// scalarValue is what a scalar subquery's result binds: its value, NULL for no row, and for
// several rows a table-less subquery answering the first two, which fails as the original
// does when MariaDB evaluates it. A subquery of several columns is a row of values (MariaDB
// then answers 1241 wherever one value is wanted, as it would).
func scalarValue(ps *parser.Parser, res *subqueryResult, mode bindMode) (ast.ExprNode, error) {
	row := func(r [][]byte) (ast.ExprNode, error) {
		vals := make([]ast.ExprNode, len(res.cols))
		for j, c := range res.cols {
			var v []byte
			if r != nil {
				v = r[j]
			}
			e, err := typedLiteral(ps, v, c, mode)
			if err != nil {
				return nil, err
			}
			vals[j] = e
		}
		if len(vals) == 1 {
			return vals[0], nil
		}
		return &ast.RowExpr{Values: vals}, nil
	}
	switch {
	case len(res.rows) == 0:
		return row(nil)
	case len(res.rows) == 1:
		return row(res.rows[0])
	case mode == bindPlain:
		return nil, tooManyRows()
	}
	first, err := row(res.rows[0])
	if err != nil {
		return nil, err
	}
	second, err := row(res.rows[1])
	if err != nil {
		return nil, err
	}
	return twoRows(first, second), nil
}

// collationBinary is the binary collation's id: byte strings.
const collationBinary = 63

// erSubqueryNo1Row is ER_SUBQUERY_NO_1_ROW (SQLSTATE 21000).
const erSubqueryNo1Row = 1242

func tooManyRows() error { return sqlerr.New(erSubqueryNo1Row, "Subquery returns more than 1 row") }

// twoRows is (SELECT a UNION ALL SELECT b).
func twoRows(a, b ast.ExprNode) ast.ExprNode {
	sel := func(e ast.ExprNode) *ast.SelectStmt {
		var fields []*ast.SelectField
		if r, ok := e.(*ast.RowExpr); ok {
			for _, v := range r.Values {
				fields = append(fields, &ast.SelectField{Expr: v})
			}
		} else {
			fields = []*ast.SelectField{{Expr: e}}
		}
		return &ast.SelectStmt{SelectStmtOpts: &ast.SelectStmtOpts{SQLCache: true}, Kind: ast.SelectStmtKindSelect, Fields: &ast.FieldList{Fields: fields}}
	}
	second := sel(b)
	second.AfterSetOperator = new(ast.SetOprType)
	*second.AfterSetOperator = ast.UnionAll
	u := &ast.SetOprStmt{SelectList: &ast.SetOprSelectList{Selects: []ast.Node{sel(a), second}}}
	return &ast.SubqueryExpr{Query: u}
}
