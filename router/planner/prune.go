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

func (k *keyRange) atLeast(n int64) {
	if !k.hasLo || n > k.lo {
		k.lo, k.hasLo = n, true
	}
}

func (k *keyRange) atMost(n int64) {
	if !k.hasHi || n < k.hi {
		k.hi, k.hasHi = n, true
	}
}

// rangeSlots returns the slots of a range- or date-sharded table that conditions on its key
// in where (>, >=, <, <=, BETWEEN, conjoined) allow; ok is false when they do not narrow it.
func rangeSlots(where ast.ExprNode, r TableRef, params []wire.Param) ([]int, bool, error) {
	var rf rules.RangeFunc
	date := ""
	switch f := r.Table.Scheme.Func.(type) {
	case rules.RangeFunc:
		rf = f
	case rules.DateFunc:
		rf, date = f.Range, f.Unit
	default:
		return nil, false, nil
	}
	// unit turns a key value into the scheme's number; strict says the bound excludes it.
	unit := func(e ast.ExprNode, strictLow bool) (int64, bool, error) {
		v, ok, err := exprValue(e, params)
		if !ok || err != nil || v.Null {
			return 0, false, err
		}
		if date == "" {
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
		return rules.DateUnit(t, date), true, nil // a date's unit holds values on both sides
	}
	var k keyRange
	var walk func(e ast.ExprNode) error
	walk = func(e ast.ExprNode) error {
		switch e := e.(type) {
		case *ast.ParenthesesExpr:
			return walk(e.Expr)
		case *ast.BetweenExpr:
			if e.Not || !isKeyColumn(e.Expr, r) {
				return nil
			}
			if lo, ok, err := unit(e.Left, false); err != nil {
				return err
			} else if ok {
				k.atLeast(lo)
			}
			if hi, ok, err := unit(e.Right, false); err != nil {
				return err
			} else if ok {
				k.atMost(hi)
			}
		case *ast.BinaryOperationExpr:
			op := e.Op
			var val ast.ExprNode
			switch {
			case op == opcode.LogicAnd:
				if err := walk(e.L); err != nil {
					return err
				}
				return walk(e.R)
			case isKeyColumn(e.L, r):
				val = e.R
			case isKeyColumn(e.R, r):
				val = e.L
				op = flip(op)
			default:
				return nil
			}
			switch op {
			case opcode.GE, opcode.GT:
				if n, ok, err := unit(val, op == opcode.GT); err != nil {
					return err
				} else if ok {
					k.atLeast(n)
				}
			case opcode.LE, opcode.LT:
				n, ok, err := unit(val, false)
				if err != nil {
					return err
				}
				if ok && op == opcode.LT && date == "" {
					n--
				}
				if ok {
					k.atMost(n)
				}
			}
		}
		return nil
	}
	if err := walk(where); err != nil {
		return nil, false, err
	}
	if !k.hasLo && !k.hasHi {
		return nil, false, nil
	}
	return rf.SlotsBetween(k.lo, k.hi, k.hasLo, k.hasHi), true, nil
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
