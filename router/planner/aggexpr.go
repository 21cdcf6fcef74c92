package planner

import (
	"math/big"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// Expressions over aggregates in a scatter query (SUM(a)/COUNT(*), ROUND(AVG(x), 2),
// MAX(a) - MIN(a), COUNT(DISTINCT a) + 1) in the select list, HAVING and ORDER BY. The
// shards still compute the expression, over their partial groups: its value is discarded,
// but its column definition is the one one MariaDB holding every row would send (types
// follow from the arguments' types, not their values). The aggregates it reads become
// hidden columns merged as usual; after the merge the executor runs the merge's row program
// (rowprog.go), which evaluates the expression with the HAVING evaluator (having.go) and
// writes the value, formatted for the column's type and decimals, over the shard's.

// computedCol is a column whose value the proxy computes after the groups are merged.
type computedCol struct {
	Col  plan.ColRef
	Eval func(*evalRow) sqlValue
	text string
	// Weight: when the column is a sort key, the hidden column the proxy fills with the
	// collation key of a string value (noCol otherwise).
	Weight plan.ColRef
}

// computeField plans field i, an expression over aggregates.
func (sh *scatterShape) computeField(i int, e ast.ExprNode) error {
	return sh.compute(plan.ColRef(i), e)
}

// compute plans column col (already in the shards' select list) as e evaluated after the merge.
func (sh *scatterShape) compute(col plan.ColRef, e ast.ExprNode) error {
	f, err := sh.compileExpr(e)
	if err != nil {
		return err
	}
	p := rowsOf(&sh.plan)
	p.computed = append(p.computed, computedCol{Col: col, Eval: f, text: sh.pl.exprText(e), Weight: plan.NoCol})
	return nil
}

// computedKey is an ORDER BY item that is an expression over aggregates not in the select
// list: a hidden column computed like a field.
func (sh *scatterShape) computedKey(k plan.MergeKey, e ast.ExprNode) (plan.MergeKey, error) {
	col := sh.addHidden(e)
	if err := sh.compute(col, e); err != nil {
		return plan.MergeKey{}, err
	}
	k.Val, k.Weight = col, sh.computedWeight(col)
	return k, nil
}

// computedWeight returns the weight column of computed column col, adding it: a string
// sorts by its collation, whose key the proxy computes with the value.
func (sh *scatterShape) computedWeight(col plan.ColRef) plan.ColRef {
	computed := computedOf(&sh.plan)
	for i := range computed {
		c := &computed[i]
		if c.Col != col {
			continue
		}
		if c.Weight == plan.NoCol {
			c.Weight = sh.addHidden(ast.NewValueExpr(nil, "", ""))
		}
		return c.Weight
	}
	return plan.NoCol
}

// notFixedDec is the decimals of a floating-point column without a fixed scale.
const notFixedDec = 31

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
	var arity bool // the call has a number of arguments the function takes
	var f func(*evalRow) sqlValue
	switch name {
	case ast.Round, ast.Truncate:
		arity = len(args) >= 1 && len(args) <= 2 && (name != ast.Truncate || len(args) == 2)
		f = roundFunc(name == ast.Truncate, args)
	case ast.Abs, ast.Ceil, ast.Ceiling, ast.Floor:
		arity = len(args) == 1
		f = integralFunc(name, args)
	case ast.Ifnull, ast.Coalesce:
		arity = len(args) >= 1 && (name != ast.Ifnull || len(args) == 2)
		f = coalesceFunc(args)
	case ast.Nullif:
		arity = len(args) == 2
		f = nullifFunc(args)
	default:
		return nil, sqlerr.NotSupported("function %s over aggregates on a query over several shards", x.FnName.O)
	}
	if !arity {
		return nil, sqlerr.New(1582, "Incorrect parameter count in the call to native function '%s'", x.FnName.O)
	}
	return f, nil
}

// roundFunc is ROUND(v[, places]), or TRUNCATE(v, places) when truncate is set: places is
// clamped to [-65, 30] as MariaDB does.
func roundFunc(truncate bool, args []func(*evalRow) sqlValue) func(*evalRow) sqlValue {
	return func(r *evalRow) sqlValue {
		v := args[0](r)
		d := sqlValue{num: new(big.Rat)}
		if len(args) == 2 {
			d = args[1](r)
		}
		if v.Null || d.Null {
			return sqlValue{Null: true}
		}
		n, _ := v.number()
		p, _ := d.number()
		places := merge.RoundRat(p, 0, true).Num().Int64()
		places = max(min(places, 30), -65)
		return sqlValue{num: merge.RoundRat(n, int(places), truncate)}
	}
}

// integralFunc is ABS, CEIL, CEILING or FLOOR (name) of its one argument.
func integralFunc(name string, args []func(*evalRow) sqlValue) func(*evalRow) sqlValue {
	return func(r *evalRow) sqlValue {
		v := args[0](r)
		if v.Null {
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
	}
}

// coalesceFunc is IFNULL or COALESCE: the first of its arguments that is not NULL.
func coalesceFunc(args []func(*evalRow) sqlValue) func(*evalRow) sqlValue {
	return func(r *evalRow) sqlValue {
		for _, a := range args {
			if v := a(r); !v.Null {
				return v
			}
		}
		return sqlValue{Null: true}
	}
}

// nullifFunc is NULLIF(a, b): NULL when a equals b, a otherwise.
func nullifFunc(args []func(*evalRow) sqlValue) func(*evalRow) sqlValue {
	return func(r *evalRow) sqlValue {
		a, b := args[0](r), args[1](r)
		if !a.Null && !b.Null && r.compare(a, b) == 0 {
			return sqlValue{Null: true}
		}
		return a
	}
}

// intArith is DIV and % (MOD) over exact values: NULL when dividing by zero.
func intArith(op opcode.Op, l, r func(*evalRow) sqlValue) func(*evalRow) sqlValue {
	if op != opcode.IntDiv && op != opcode.Mod {
		return nil
	}
	return func(row *evalRow) sqlValue {
		a, b := l(row), r(row)
		if a.Null || b.Null {
			return sqlValue{Null: true}
		}
		p, _ := a.number()
		q, _ := b.number()
		if q.Sign() == 0 {
			return sqlValue{Null: true}
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
	for _, a := range sh.plan.Aggs {
		if a.Internal && a.Text == text {
			return columnValue(a.Col), nil
		}
	}
	col := sh.addHidden(agg)
	a, err := sh.mergeAgg(agg, col)
	if err != nil {
		return nil, err
	}
	a.Internal = true
	sh.plan.Aggs = append(sh.plan.Aggs, a)
	return columnValue(col), nil
}

// divValue is p / q as MySQL's decimal division holds it: truncated at DivScale of the
// dividend's scale (q is not zero).
func divValue(p, q *big.Rat) *big.Rat {
	return merge.RoundRat(new(big.Rat).Quo(p, q), merge.DivScale(merge.RatScale(p, 30)), true)
}
