package planner

import (
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// keyRange is an inclusive range of a range or date scheme's unit numbers.
type keyRange struct {
	lo, hi       int64
	hasLo, hasHi bool
}

// atLeast raises the range's low end to n.
func (k *keyRange) atLeast(n int64) {
	if !k.hasLo || n > k.lo {
		k.lo, k.hasLo = n, true
	}
}

// atMost lowers the range's high end to n.
func (k *keyRange) atMost(n int64) {
	if !k.hasHi || n < k.hi {
		k.hi, k.hasHi = n, true
	}
}

// rangeSlots returns the slots of a range- or date-sharded table that conditions on its key
// in where (>, >=, <, <=, BETWEEN, conjoined) allow; ok is false when they do not narrow it.
func rangeSlots(where ast.ExprNode, r TableRef, params []wire.Param) ([]int, bool, error) {
	rw := rangeWalk{ref: r, params: params}
	var rf rules.RangeFunc
	switch f := r.Table.Scheme.Func.(type) {
	case rules.RangeFunc:
		rf = f
	case rules.DateFunc:
		rf, rw.date = f.Range, f.Unit
	default:
		return nil, false, nil
	}
	if err := rw.walk(where); err != nil {
		return nil, false, err
	}
	k := rw.k
	if !k.hasLo && !k.hasHi {
		return nil, false, nil
	}
	return rf.SlotsBetween(k.lo, k.hi, k.hasLo, k.hasHi), true, nil
}

// rangeWalk narrows the key range of a range- or date-sharded table (ref) from the
// conditions on its key in a WHERE clause, its ? values bound from params.
type rangeWalk struct {
	ref    TableRef
	params []wire.Param
	date   string // the date scheme's unit; "" for a range scheme over integers
	k      keyRange
}

// unit turns a key value into the scheme's number; strictLow says the bound is a lower one
// that excludes the value (>). ok is false for a value the scheme cannot place.
func (rw *rangeWalk) unit(e ast.ExprNode, strictLow bool) (int64, bool, error) {
	v, ok, err := exprValue(e, rw.params)
	if !ok || err != nil || v.Null {
		return 0, false, err
	}
	if rw.date == "" {
		if !v.IsInt {
			return 0, false, nil
		}
		if strictLow {
			return v.Int + 1, true, nil
		}
		return v.Int, true, nil
	}
	if v.IsInt {
		return 0, false, nil
	}
	t, err := rules.ParseDate(v.Str)
	if err != nil {
		return 0, false, nil
	}
	return rules.DateUnit(t, rw.date), true, nil // a date's unit holds values on both sides
}

// walk narrows the range by condition e: parentheses, AND, BETWEEN and comparisons of the
// key column; anything else leaves the range as it is.
func (rw *rangeWalk) walk(e ast.ExprNode) error {
	switch e := e.(type) {
	case *ast.ParenthesesExpr:
		return rw.walk(e.Expr)
	case *ast.BetweenExpr:
		return rw.between(e)
	case *ast.BinaryOperationExpr:
		if e.Op == opcode.LogicAnd {
			if err := rw.walk(e.L); err != nil {
				return err
			}
			return rw.walk(e.R)
		}
		return rw.compare(e)
	}
	return nil
}

// between narrows the range by key BETWEEN lo AND hi (not NOT BETWEEN).
func (rw *rangeWalk) between(e *ast.BetweenExpr) error {
	if e.Not || !isKeyColumn(e.Expr, rw.ref) {
		return nil
	}
	if lo, ok, err := rw.unit(e.Left, false); err != nil {
		return err
	} else if ok {
		rw.k.atLeast(lo)
	}
	if hi, ok, err := rw.unit(e.Right, false); err != nil {
		return err
	} else if ok {
		rw.k.atMost(hi)
	}
	return nil
}

// compare narrows the range by a comparison of the key column with a value, on either side
// (>, >=, <, <=); other operators leave it as it is.
func (rw *rangeWalk) compare(e *ast.BinaryOperationExpr) error {
	op := e.Op
	var val ast.ExprNode
	switch {
	case isKeyColumn(e.L, rw.ref):
		val = e.R
	case isKeyColumn(e.R, rw.ref):
		val = e.L
		op = flip(op)
	default:
		return nil
	}
	switch op {
	case opcode.GE, opcode.GT:
		if n, ok, err := rw.unit(val, op == opcode.GT); err != nil {
			return err
		} else if ok {
			rw.k.atLeast(n)
		}
	case opcode.LE, opcode.LT:
		n, ok, err := rw.unit(val, false)
		if err != nil {
			return err
		}
		if ok && op == opcode.LT && rw.date == "" {
			n--
		}
		if ok {
			rw.k.atMost(n)
		}
	}
	return nil
}

// flip mirrors a comparison: v < key is key > v.
func flip(op opcode.Op) opcode.Op {
	switch op {
	case opcode.LT:
		return opcode.GT
	case opcode.LE:
		return opcode.GE
	case opcode.GT:
		return opcode.LT
	case opcode.GE:
		return opcode.LE
	}
	return op
}
