package planner

import (
	"bytes"
	"math/big"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// havingExpr is a HAVING condition the proxy evaluates over merged groups.
type havingExpr struct {
	text string
	Eval func(r *evalRow) sqlValue
}

// evalRow is a merged row with its columns' kinds and definitions.
type evalRow struct {
	Row   [][]byte
	Kinds []merge.Kind
	Defs  []wire.ColDef
	Col   func(plan.ColRef) int
	colls collations
}

// sqlValue is a value during HAVING evaluation: NULL, a number (exact) or a string.
type sqlValue struct {
	Null bool
	num  *big.Rat
	str  []byte
	flt  bool      // num is a DOUBLE: arithmetic on it is floating-point, as in MySQL
	typ  numFormat // how num prints as a string, when known
	coll uint16    // str's collation id when it came from a column (0: unknown)
}

// numFormat is how a number prints as text: the kind and decimals of the column (or
// literal) it came from.
type numFormat struct {
	known bool
	kind  merge.Kind
	dec   int
}

// number is v as a number: its own, or its string read as MySQL reads one (0 when it is
// not numeric). v is not NULL.
func (v sqlValue) number() (*big.Rat, bool) {
	if v.num != nil {
		return v.num, true
	}
	r, ok := new(big.Rat).SetString(string(bytes.TrimSpace(v.str)))
	if !ok {
		return new(big.Rat), true // MySQL reads a non-numeric string as 0
	}
	return r, true
}

// boolValue is b as SQL has it: 1 or 0.
func boolValue(b bool) sqlValue {
	if b {
		return sqlValue{num: big.NewRat(1, 1)}
	}
	return sqlValue{num: new(big.Rat)}
}

// Truth is v as a condition: true or false, and false for NULL (ok false).
func (v sqlValue) Truth() (bool, bool) {
	if v.Null {
		return false, false
	}
	n, _ := v.number()
	return n.Sign() != 0, true
}

// compileHaving compiles a HAVING condition into the expression the merge evaluates over
// each merged group.
func (sh *scatterShape) compileHaving(e ast.ExprNode) (*havingExpr, error) {
	f, err := sh.compileExpr(e)
	if err != nil {
		return nil, err
	}
	return &havingExpr{text: sh.pl.exprText(e), Eval: f}, nil
}

// havingColumn is the column of the shards' rows that holds e: a field named by its alias,
// a group key of the same text, or a field of the same expression.
func (sh *scatterShape) havingColumn(e ast.ExprNode) (plan.ColRef, bool) {
	if c, ok := e.(*ast.ColumnNameExpr); ok && c.Name.Table.L == "" {
		for i, f := range sh.fields {
			if f.AsName.L == c.Name.Name.L {
				return plan.ColRef(i), true
			}
		}
	}
	text := sh.pl.exprText(e)
	for _, g := range sh.plan.Order {
		if g.Text == text {
			return g.Val, true
		}
	}
	if i := sh.fieldOf(e); i >= 0 {
		return plan.ColRef(i), true
	}
	return 0, false
}

// compileExpr compiles e, a HAVING condition or an expression over aggregates, into a
// function of the merged row: a column the shards return (a group key, a field, an
// aggregate), a literal or ?, or an operator or function the evaluator knows over those.
func (sh *scatterShape) compileExpr(e ast.ExprNode) (func(*evalRow) sqlValue, error) {
	switch e.(type) {
	case *test_driver.ValueExpr, *test_driver.ParamMarkerExpr, *ast.AggregateFuncExpr, *ast.ParenthesesExpr:
	default:
		// An expression without aggregates that a column holds (a group key, a field):
		// its merged value.
		if !hasAggregateExpr(e) {
			if col, ok := sh.havingColumn(e); ok {
				return columnValue(col), nil
			}
		}
	}
	switch x := e.(type) {
	case *ast.ParenthesesExpr:
		return sh.compileExpr(x.Expr)
	case *ast.AggregateFuncExpr:
		return sh.compileAggregate(x)
	case *test_driver.ValueExpr:
		v := literalValue(x)
		return func(*evalRow) sqlValue { return v }, nil
	case *test_driver.ParamMarkerExpr:
		return sh.compileParam(x)
	case *ast.UnaryOperationExpr:
		if f, err := sh.compileUnary(x); f != nil || err != nil {
			return f, err
		}
	case *ast.IsNullExpr:
		return sh.compileIsNull(x)
	case *ast.BetweenExpr:
		return sh.compileBetween(x)
	case *ast.PatternInExpr:
		if x.Sel == nil {
			return sh.compileIn(x)
		}
	case *ast.BinaryOperationExpr:
		return sh.compileBinary(x)
	case *ast.CaseExpr:
		return sh.compileCase(x)
	case *ast.FuncCallExpr:
		return sh.compileFunc(x)
	}
	if col, ok := sh.havingColumn(e); ok {
		return columnValue(col), nil
	}
	return nil, sqlerr.NotSupported("%s (neither an aggregate nor a group key) in HAVING or an expression over aggregates, on a query over several shards", sh.pl.exprText(e))
}

// compileAggregate is an aggregate's merged value: its column, or for AVG a hidden column
// holding the value MySQL computes with (internalAvg).
func (sh *scatterShape) compileAggregate(x *ast.AggregateFuncExpr) (func(*evalRow) sqlValue, error) {
	if strings.EqualFold(x.F, ast.AggFuncAvg) {
		return sh.internalAvg(x)
	}
	col, _, err := sh.aggColumn(x)
	if err != nil {
		return nil, err
	}
	return columnValue(col), nil
}

// compileUnary is NOT and unary minus; nil and no error for another operator, which the
// caller then looks for among the columns.
func (sh *scatterShape) compileUnary(x *ast.UnaryOperationExpr) (func(*evalRow) sqlValue, error) {
	in, err := sh.compileExpr(x.V)
	if err != nil {
		return nil, err
	}
	switch x.Op {
	case opcode.Not, opcode.Not2:
		return func(r *evalRow) sqlValue {
			t, ok := in(r).Truth()
			if !ok {
				return sqlValue{Null: true}
			}
			return boolValue(!t)
		}, nil
	case opcode.Minus:
		return func(r *evalRow) sqlValue {
			v := in(r)
			if v.Null {
				return v
			}
			n, _ := v.number()
			return sqlValue{num: new(big.Rat).Neg(n)}
		}, nil
	}
	return nil, nil
}

// compileIsNull is IS [NOT] NULL.
func (sh *scatterShape) compileIsNull(x *ast.IsNullExpr) (func(*evalRow) sqlValue, error) {
	in, err := sh.compileExpr(x.Expr)
	if err != nil {
		return nil, err
	}
	return func(r *evalRow) sqlValue { return boolValue(in(r).Null != x.Not) }, nil
}

// compileBetween is [NOT] BETWEEN: NULL when any of its three values is.
func (sh *scatterShape) compileBetween(x *ast.BetweenExpr) (func(*evalRow) sqlValue, error) {
	v, err1 := sh.compileExpr(x.Expr)
	lo, err2 := sh.compileExpr(x.Left)
	hi, err3 := sh.compileExpr(x.Right)
	if err := firstErr(err1, err2, err3); err != nil {
		return nil, err
	}
	return func(r *evalRow) sqlValue {
		a, l, h := v(r), lo(r), hi(r)
		if a.Null || l.Null || h.Null {
			return sqlValue{Null: true}
		}
		in := r.compare(a, l) >= 0 && r.compare(a, h) <= 0
		return boolValue(in != x.Not)
	}, nil
}

// compileIn is [NOT] IN over a list of values (not a subquery): NULL, as in MySQL, when no
// value matches and one of them is NULL.
func (sh *scatterShape) compileIn(x *ast.PatternInExpr) (func(*evalRow) sqlValue, error) {
	if slices.ContainsFunc(x.List, isListMarker) {
		return nil, sqlerr.NotSupported("an IN list of %d or more values in HAVING of a query over several shards, in a statement of %d KB or more", MinBigList, MinBigStatement>>10)
	}
	v, err := sh.compileExpr(x.Expr)
	if err != nil {
		return nil, err
	}
	var list []func(*evalRow) sqlValue
	for _, it := range x.List {
		f, err := sh.compileExpr(it)
		if err != nil {
			return nil, err
		}
		list = append(list, f)
	}
	return func(r *evalRow) sqlValue {
		a := v(r)
		if a.Null {
			return a
		}
		sawNull := false
		for _, f := range list {
			b := f(r)
			if b.Null {
				sawNull = true
			} else if r.compare(a, b) == 0 {
				return boolValue(!x.Not)
			}
		}
		if sawNull {
			return sqlValue{Null: true}
		}
		return boolValue(x.Not)
	}, nil
}

// compileParam is a ? in HAVING: the value bound to it at EXECUTE.
func (sh *scatterShape) compileParam(x *test_driver.ParamMarkerExpr) (func(*evalRow) sqlValue, error) {
	if sh.params == nil {
		return nil, errNeedsParams
	}
	if x.Order >= len(sh.params) {
		return nil, sqlerr.New(sqlerr.ErWrongArguments, "Incorrect arguments to mysqld_stmt_execute")
	}
	lit, err := ParamLiteral(sh.params[x.Order])
	if err != nil {
		return nil, err
	}
	v := literalValue(ast.NewValueExpr(lit, "", "").(*test_driver.ValueExpr))
	return func(*evalRow) sqlValue { return v }, nil
}

// firstErr is the first of errs that is not nil.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// compileBinary is a binary operator: AND, OR, XOR, the comparisons, +, -, *, / and DIV,
// MOD, with SQL's NULL rules.
func (sh *scatterShape) compileBinary(x *ast.BinaryOperationExpr) (func(*evalRow) sqlValue, error) {
	l, err := sh.compileExpr(x.L)
	if err != nil {
		return nil, err
	}
	r, err := sh.compileExpr(x.R)
	if err != nil {
		return nil, err
	}
	switch x.Op {
	case opcode.LogicAnd, opcode.LogicOr, opcode.LogicXor:
		return func(row *evalRow) sqlValue {
			a, aok := l(row).Truth()
			b, bok := r(row).Truth()
			switch x.Op {
			case opcode.LogicAnd:
				if (aok && !a) || (bok && !b) {
					return boolValue(false)
				}
				if !aok || !bok {
					return sqlValue{Null: true}
				}
				return boolValue(true)
			case opcode.LogicOr:
				if (aok && a) || (bok && b) {
					return boolValue(true)
				}
				if !aok || !bok {
					return sqlValue{Null: true}
				}
				return boolValue(false)
			}
			if !aok || !bok {
				return sqlValue{Null: true}
			}
			return boolValue(a != b)
		}, nil
	case opcode.EQ, opcode.NE, opcode.LT, opcode.LE, opcode.GT, opcode.GE, opcode.NullEQ:
		return func(row *evalRow) sqlValue {
			a, b := l(row), r(row)
			if x.Op == opcode.NullEQ {
				if a.Null || b.Null {
					return boolValue(a.Null && b.Null)
				}
				return boolValue(row.compare(a, b) == 0)
			}
			if a.Null || b.Null {
				return sqlValue{Null: true}
			}
			c := row.compare(a, b)
			switch x.Op {
			case opcode.EQ:
				return boolValue(c == 0)
			case opcode.NE:
				return boolValue(c != 0)
			case opcode.LT:
				return boolValue(c < 0)
			case opcode.LE:
				return boolValue(c <= 0)
			case opcode.GT:
				return boolValue(c > 0)
			}
			return boolValue(c >= 0)
		}, nil
	case opcode.Plus, opcode.Minus, opcode.Mul, opcode.Div:
		return func(row *evalRow) sqlValue { return arith(x.Op, l(row), r(row)) }, nil
	}
	if f := intArith(x.Op, l, r); f != nil {
		return f, nil
	}
	return nil, sqlerr.NotSupported("operator %s in HAVING or an expression over aggregates, on a query over several shards", x.Op.String())
}

// columnValue reads a column of the merged row, with its type.
func columnValue(col plan.ColRef) func(*evalRow) sqlValue {
	return func(r *evalRow) sqlValue {
		i := r.Col(col)
		v := r.Row[i]
		if v == nil {
			return sqlValue{Null: true}
		}
		k := r.Kinds[i]
		switch k {
		case merge.KindSigned, merge.KindUnsigned, merge.KindDecimal, merge.KindFloat:
			if n, ok := new(big.Rat).SetString(string(v)); ok {
				return sqlValue{num: n, flt: k == merge.KindFloat, typ: numFormat{known: true, kind: k, dec: int(r.Defs[i].Decimals)}}
			}
		}
		return sqlValue{str: v, coll: r.Defs[i].Collation}
	}
}

// literalValue is a literal's value, typed as MySQL types it (integer, decimal with its
// scale, DOUBLE, string).
func literalValue(x *test_driver.ValueExpr) sqlValue {
	integer := numFormat{known: true, kind: merge.KindSigned}
	switch v := x.GetValue().(type) {
	case nil:
		return sqlValue{Null: true}
	case int64:
		return sqlValue{num: new(big.Rat).SetInt64(v), typ: integer}
	case uint64:
		return sqlValue{num: new(big.Rat).SetUint64(v), typ: integer}
	case string:
		return sqlValue{str: []byte(v)}
	case []byte:
		return sqlValue{str: v}
	}
	text := x.GetString()
	switch x.Kind() {
	case test_driver.KindFloat64, test_driver.KindFloat32:
		return sqlValue{num: new(big.Rat).SetFloat64(x.GetFloat64()), flt: true, typ: numFormat{known: true, kind: merge.KindFloat, dec: notFixedDec}}
	case test_driver.KindMysqlDecimal:
		text = x.GetMysqlDecimal().String()
	}
	if n, ok := new(big.Rat).SetString(text); ok {
		dec := 0
		if i := strings.IndexByte(text, '.'); i >= 0 {
			dec = len(text) - i - 1
		}
		return sqlValue{num: n, typ: numFormat{known: true, kind: merge.KindDecimal, dec: dec}}
	}
	return sqlValue{str: []byte(text)}
}
