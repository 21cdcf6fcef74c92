package router

import (
	"math/big"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// Expressions over aggregates in a scatter query (SUM(a)/COUNT(*), ROUND(AVG(x), 2),
// MAX(a) - MIN(a), COUNT(DISTINCT a) + 1) in the select list, HAVING and ORDER BY. The
// shards still compute the expression, over their partial groups: its value is discarded,
// but its column definition is the one one MariaDB holding every row would send (types
// follow from the arguments' types, not their values). The aggregates it reads become
// hidden columns merged as usual; after the merge the proxy evaluates the expression with
// the HAVING evaluator (having.go) and writes the value, formatted for the column's type
// and decimals, over the shard's.

// computedCol is a column whose value the proxy computes after the groups are merged.
type computedCol struct {
	col  colRef
	eval func(*evalRow) sqlValue
	text string
	// weight: when the column is a sort key, the hidden column the proxy fills with the
	// collation key of a string value (noCol otherwise).
	weight colRef
}

// computeField plans field i, an expression over aggregates.
func (sh *scatterShape) computeField(i int, e ast.ExprNode) error {
	return sh.compute(colRef(i), e)
}

// compute plans column col (already in the shards' select list) as e evaluated after the merge.
func (sh *scatterShape) compute(col colRef, e ast.ExprNode) error {
	f, err := sh.compileExpr(e)
	if err != nil {
		return err
	}
	sh.plan.computed = append(sh.plan.computed, computedCol{col: col, eval: f, text: sh.pl.exprText(e), weight: noCol})
	return nil
}

// computedKey is an ORDER BY item that is an expression over aggregates not in the select
// list: a hidden column computed like a field.
func (sh *scatterShape) computedKey(k mergeKey, e ast.ExprNode) (mergeKey, error) {
	col := sh.addHidden(e)
	if err := sh.compute(col, e); err != nil {
		return mergeKey{}, err
	}
	k.val, k.weight = col, sh.computedWeight(col)
	return k, nil
}

// computedWeight returns the weight column of computed column col, adding it: a string
// sorts by its collation, whose key the proxy computes with the value.
func (sh *scatterShape) computedWeight(col colRef) colRef {
	for i := range sh.plan.computed {
		c := &sh.plan.computed[i]
		if c.col != col {
			continue
		}
		if c.weight == noCol {
			c.weight = sh.addHidden(ast.NewValueExpr(nil, "", ""))
		}
		return c.weight
	}
	return noCol
}

// computeStream evaluates the computed columns of each merged row.
type computeStream struct {
	in   merge.Stream
	cols []computedCol
	ev   *evalRow
	defs []engine.ColDef
}

func (c *computeStream) Next() ([][]byte, error) {
	row, err := c.in.Next()
	if row == nil || err != nil {
		return row, err
	}
	c.ev.row = row
	// Evaluate every column first: one computed column never reads another.
	vals := make([][]byte, len(c.cols))
	for i, cc := range c.cols {
		j := c.ev.col(cc.col)
		vals[i] = formatValue(cc.eval(c.ev), c.ev.kinds[j], c.defs[j])
	}
	for i, cc := range c.cols {
		j := c.ev.col(cc.col)
		row[j] = vals[i]
		if cc.weight != noCol && vals[i] != nil && c.ev.kinds[j] == merge.KindString {
			w := vals[i]
			if coll := c.ev.collation(c.defs[j].Collation); coll != nil {
				w = coll.AppendKey(nil, string(w))
			}
			row[c.ev.col(cc.weight)] = w
		}
	}
	return row, nil
}

// notFixedDec is the decimals of a floating-point column without a fixed scale.
const notFixedDec = 31

// formatValue writes v as MySQL's text protocol writes a value of the column's kind.
func formatValue(v sqlValue, k merge.Kind, def engine.ColDef) []byte {
	if v.null {
		return nil
	}
	return append([]byte{}, valueText(coerce(v, k, def))...)
}

// compileFunc compiles the functions the evaluator knows: ROUND, TRUNCATE, ABS, CEIL(ING),
// FLOOR, IFNULL, COALESCE, NULLIF, and those of aggfunc.go.
func (sh *scatterShape) compileFunc(x *ast.FuncCallExpr) (func(*evalRow) sqlValue, error) {
	if f, ok, err := sh.compileStringFunc(x); ok {
		return f, err
	}
	name := x.FnName.L
	// The value IFNULL, COALESCE or NULLIF returns is one of its arguments, with its type.
	compile := sh.compileExpr
	if name == ast.Ifnull || name == ast.Coalesce || name == ast.Nullif {
		compile = sh.typedArg
	}
	args := make([]func(*evalRow) sqlValue, len(x.Args))
	for i, a := range x.Args {
		f, err := compile(a)
		if err != nil {
			return nil, err
		}
		args[i] = f
	}
	bad := func() error {
		return sqlerr.New(1582, "Incorrect parameter count in the call to native function '%s'", x.FnName.O)
	}
	switch name {
	case ast.Round, ast.Truncate:
		if len(args) < 1 || len(args) > 2 || (name == ast.Truncate && len(args) != 2) {
			return nil, bad()
		}
		return func(r *evalRow) sqlValue {
			v := args[0](r)
			d := sqlValue{num: new(big.Rat)}
			if len(args) == 2 {
				d = args[1](r)
			}
			if v.null || d.null {
				return sqlValue{null: true}
			}
			n, _ := v.number()
			p, _ := d.number()
			places := merge.RoundRat(p, 0, true).Num().Int64()
			places = max(min(places, 30), -65)
			return sqlValue{num: merge.RoundRat(n, int(places), name == ast.Truncate)}
		}, nil
	case ast.Abs, ast.Ceil, ast.Ceiling, ast.Floor:
		if len(args) != 1 {
			return nil, bad()
		}
		return func(r *evalRow) sqlValue {
			v := args[0](r)
			if v.null {
				return v
			}
			n, _ := v.number()
			out := new(big.Rat)
			switch name {
			case ast.Abs:
				out.Abs(n)
			default:
				q := merge.RoundRat(n, 0, true) // toward zero
				if q.Cmp(n) != 0 && (name == ast.Floor) == (n.Sign() < 0) {
					if name == ast.Floor {
						q.Sub(q, big.NewRat(1, 1))
					} else {
						q.Add(q, big.NewRat(1, 1))
					}
				}
				out = q
			}
			return sqlValue{num: out}
		}, nil
	case ast.Ifnull, ast.Coalesce:
		if len(args) < 1 || (name == ast.Ifnull && len(args) != 2) {
			return nil, bad()
		}
		return func(r *evalRow) sqlValue {
			for _, a := range args {
				if v := a(r); !v.null {
					return v
				}
			}
			return sqlValue{null: true}
		}, nil
	case ast.Nullif:
		if len(args) != 2 {
			return nil, bad()
		}
		return func(r *evalRow) sqlValue {
			a, b := args[0](r), args[1](r)
			if !a.null && !b.null && r.compare(a, b) == 0 {
				return sqlValue{null: true}
			}
			return a
		}, nil
	}
	return nil, sqlerr.NotSupported("function %s over aggregates on a query over several shards", x.FnName.O)
}

// intArith is DIV and % (MOD) over exact values: NULL when dividing by zero.
func intArith(op opcode.Op, l, r func(*evalRow) sqlValue) func(*evalRow) sqlValue {
	if op != opcode.IntDiv && op != opcode.Mod {
		return nil
	}
	return func(row *evalRow) sqlValue {
		a, b := l(row), r(row)
		if a.null || b.null {
			return sqlValue{null: true}
		}
		p, _ := a.number()
		q, _ := b.number()
		if q.Sign() == 0 {
			return sqlValue{null: true}
		}
		quo := merge.RoundRat(new(big.Rat).Quo(p, q), 0, true)
		if op == opcode.IntDiv {
			return sqlValue{num: quo}
		}
		return sqlValue{num: new(big.Rat).Sub(p, new(big.Rat).Mul(quo, q))}
	}
}

// internalAvg is AVG(...) read by an expression: a hidden AVG column whose merged value is
// the one MySQL computes with (DivScale digits, truncated), so that AVG(x) * 2 agrees to the
// last digit.
func (sh *scatterShape) internalAvg(agg *ast.AggregateFuncExpr) (func(*evalRow) sqlValue, error) {
	text := sh.pl.exprText(agg)
	for _, a := range sh.plan.aggs {
		if a.internal && a.text == text {
			return columnValue(a.col), nil
		}
	}
	col := sh.addHidden(agg)
	a, err := sh.mergeAgg(agg, col)
	if err != nil {
		return nil, err
	}
	a.internal = true
	sh.plan.aggs = append(sh.plan.aggs, a)
	return columnValue(col), nil
}

// divValue is p / q as MySQL's decimal division holds it: truncated at DivScale of the
// dividend's scale (q is not zero).
func divValue(p, q *big.Rat) *big.Rat {
	return merge.RoundRat(new(big.Rat).Quo(p, q), merge.DivScale(merge.RatScale(p, 30)), true)
}
