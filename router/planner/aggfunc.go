package planner

import (
	"cmp"
	"math"
	"math/big"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// funcSpec is one function: its argument count, which arguments it reads as text or
// returns (typed), and its evaluation over the arguments' values.
type funcSpec struct {
	min, max int // max < 0: any number
	typed    func(i int) bool
	eval     func(r *evalRow, args []sqlValue) sqlValue
}

func allArgs(int) bool { return true }

func firstArg(i int) bool { return i == 0 }

// stringFunc returns the spec of a function of this file, or false.
func stringFunc(name string) (funcSpec, bool) {
	switch name {
	case ast.Concat:
		return funcSpec{1, -1, allArgs, strictNull(concat)}, true
	case ast.ConcatWS:
		return funcSpec{2, -1, allArgs, concatWS}, true
	case ast.If:
		return funcSpec{3, 3, func(i int) bool { return i > 0 }, ifFunc}, true
	case ast.Least, ast.Greatest:
		return funcSpec{2, -1, allArgs, strictNull(extreme(name == ast.Greatest))}, true
	case ast.Length, ast.OctetLength:
		return funcSpec{1, 1, allArgs, strictNull(func(_ *evalRow, a []sqlValue) sqlValue { return intValue(int64(len(valueText(a[0])))) })}, true
	case ast.CharLength, ast.CharacterLength:
		return funcSpec{1, 1, allArgs, strictNull(func(_ *evalRow, a []sqlValue) sqlValue {
			return intValue(int64(utf8.RuneCount(valueText(a[0]))))
		})}, true
	case ast.Upper, ast.Ucase, ast.Lower, ast.Lcase:
		up := name == ast.Upper || name == ast.Ucase
		return funcSpec{1, 1, allArgs, strictNull(func(_ *evalRow, a []sqlValue) sqlValue {
			if a[0].coll == binaryCollation {
				return a[0] // a binary string has no letter case
			}
			if up {
				return textValue(a[0], strings.ToUpper(string(valueText(a[0]))))
			}
			return textValue(a[0], strings.ToLower(string(valueText(a[0]))))
		})}, true
	case ast.Lpad, ast.Rpad:
		return funcSpec{3, 3, func(i int) bool { return i != 1 }, strictNull(pad(name == ast.Lpad))}, true
	case ast.Repeat:
		return funcSpec{2, 2, firstArg, strictNull(repeat)}, true
	case ast.Left, ast.Right:
		return funcSpec{2, 2, firstArg, strictNull(leftRight(name == ast.Left))}, true
	case ast.Substring, ast.Substr, ast.Mid:
		return funcSpec{2, 3, firstArg, strictNull(substring)}, true
	case ast.Replace:
		return funcSpec{3, 3, allArgs, strictNull(replace)}, true
	case ast.Reverse:
		return funcSpec{1, 1, allArgs, strictNull(reverse)}, true
	case ast.LTrim, ast.RTrim:
		left := name == ast.LTrim
		return funcSpec{1, 1, allArgs, strictNull(func(_ *evalRow, a []sqlValue) sqlValue {
			s := string(valueText(a[0]))
			if left {
				return textValue(a[0], strings.TrimLeft(s, " "))
			}
			return textValue(a[0], strings.TrimRight(s, " "))
		})}, true
	case ast.Space:
		return funcSpec{1, 1, none, strictNull(func(_ *evalRow, a []sqlValue) sqlValue {
			return sqlValue{str: []byte(strings.Repeat(" ", int(clampInt(a[0], 0, maxTextLen))))}
		})}, true
	}
	return numericFunc(name)
}

func none(int) bool { return false }

// numericFunc returns the spec of a numeric function of this file, or false.
func numericFunc(name string) (funcSpec, bool) {
	switch name {
	case ast.Sign:
		return funcSpec{1, 1, none, strictNull(func(_ *evalRow, a []sqlValue) sqlValue {
			if a[0].flt || a[0].num == nil {
				f := floatOf(a[0])
				return intValue(int64(cmp.Compare(f, 0)))
			}
			return intValue(int64(a[0].num.Sign()))
		})}, true
	case ast.Mod:
		return funcSpec{2, 2, none, strictNull(func(_ *evalRow, a []sqlValue) sqlValue {
			if a[0].flt || a[1].flt || a[0].num == nil || a[1].num == nil {
				y := floatOf(a[1])
				if y == 0 {
					return sqlValue{Null: true}
				}
				return floatValue(math.Mod(floatOf(a[0]), y))
			}
			return intArith(opcode.Mod, constant(a[0]), constant(a[1]))(nil)
		})}, true
	case ast.Pow, ast.Power:
		return funcSpec{2, 2, none, strictNull(func(_ *evalRow, a []sqlValue) sqlValue {
			return floatValue(math.Pow(floatOf(a[0]), floatOf(a[1])))
		})}, true
	case ast.Sqrt:
		return funcSpec{1, 1, none, strictNull(func(_ *evalRow, a []sqlValue) sqlValue {
			f := floatOf(a[0])
			if f < 0 {
				return sqlValue{Null: true}
			}
			return floatValue(math.Sqrt(f))
		})}, true
	case ast.Format:
		return funcSpec{2, 2, none, strictNull(formatNumber)}, true
	}
	return funcSpec{}, false
}

func constant(v sqlValue) func(*evalRow) sqlValue { return func(*evalRow) sqlValue { return v } }

// maxTextLen bounds the text a function builds (MariaDB's max_allowed_packet default,
// beyond which it returns NULL with a warning).
const maxTextLen = 16 << 20

// compileStringFunc compiles x when it is a function of this file; ok is false otherwise.
func (sh *scatterShape) compileStringFunc(x *ast.FuncCallExpr) (f func(*evalRow) sqlValue, ok bool, err error) {
	spec, ok := stringFunc(x.FnName.L)
	if !ok {
		return nil, false, nil
	}
	if len(x.Args) < spec.min || (spec.max >= 0 && len(x.Args) > spec.max) {
		return nil, true, sqlerr.New(1582, "Incorrect parameter count in the call to native function '%s'", x.FnName.O)
	}
	args := make([]func(*evalRow) sqlValue, len(x.Args))
	for i, a := range x.Args {
		if spec.typed(i) {
			args[i], err = sh.typedArg(a)
		} else {
			args[i], err = sh.compileExpr(a)
		}
		if err != nil {
			return nil, true, err
		}
	}
	return func(r *evalRow) sqlValue {
		vals := make([]sqlValue, len(args))
		for i, a := range args {
			vals[i] = a(r)
		}
		return spec.eval(r, vals)
	}, true, nil
}

// typedArg compiles e, an argument read as text or returned as a result: a value that
// does not carry its MariaDB type (an expression rather than a column or a literal) gets
// the type of a hidden column computing e.
func (sh *scatterShape) typedArg(e ast.ExprNode) (func(*evalRow) sqlValue, error) {
	f, err := sh.compileExpr(e)
	if err != nil {
		return nil, err
	}
	switch unparen(e).(type) {
	case *test_driver.ValueExpr, *test_driver.ParamMarkerExpr, *ast.AggregateFuncExpr, *ast.ColumnNameExpr:
		return f, nil
	}
	col := sh.addHidden(e)
	return func(r *evalRow) sqlValue {
		i := r.Col(col)
		return coerce(f(r), r.Kinds[i], r.Defs[i])
	}, nil
}

// compileCase compiles CASE [v] WHEN w THEN x ... [ELSE y] END.
func (sh *scatterShape) compileCase(x *ast.CaseExpr) (func(*evalRow) sqlValue, error) {
	var value func(*evalRow) sqlValue
	var err error
	if x.Value != nil {
		if value, err = sh.compileExpr(x.Value); err != nil {
			return nil, err
		}
	}
	whens := make([]func(*evalRow) sqlValue, len(x.WhenClauses))
	thens := make([]func(*evalRow) sqlValue, len(x.WhenClauses))
	for i, w := range x.WhenClauses {
		if whens[i], err = sh.compileExpr(w.Expr); err != nil {
			return nil, err
		}
		if thens[i], err = sh.typedArg(w.Result); err != nil {
			return nil, err
		}
	}
	otherwise := constant(sqlValue{Null: true})
	if x.ElseClause != nil {
		if otherwise, err = sh.typedArg(x.ElseClause); err != nil {
			return nil, err
		}
	}
	return func(r *evalRow) sqlValue {
		var v sqlValue
		if value != nil {
			v = value(r)
		}
		for i, w := range whens {
			c := w(r)
			if value == nil {
				if t, ok := c.Truth(); ok && t {
					return thens[i](r)
				}
			} else if !v.Null && !c.Null && r.compare(v, c) == 0 {
				return thens[i](r)
			}
		}
		return otherwise(r)
	}, nil
}

// strictNull makes f return NULL when any argument is NULL.
func strictNull(f func(*evalRow, []sqlValue) sqlValue) func(*evalRow, []sqlValue) sqlValue {
	return func(r *evalRow, a []sqlValue) sqlValue {
		if slices.ContainsFunc(a, func(v sqlValue) bool { return v.Null }) {
			return sqlValue{Null: true}
		}
		return f(r, a)
	}
}

func intValue(n int64) sqlValue {
	return sqlValue{num: new(big.Rat).SetInt64(n), typ: numFormat{known: true, kind: merge.KindSigned}}
}

// textValue is s, a string derived from v (keeping v's collation).
func textValue(v sqlValue, s string) sqlValue {
	if len(s) > maxTextLen {
		return sqlValue{Null: true}
	}
	return sqlValue{str: []byte(s), coll: v.coll}
}

// clampInt is v as an integer (rounded as MySQL reads a number into an integer argument),
// within [lo, hi].
func clampInt(v sqlValue, lo, hi int64) int64 {
	n, _ := v.number()
	if v.flt || v.num == nil {
		n = new(big.Rat).SetFloat64(math.Round(floatOf(v)))
		if n == nil {
			return lo
		}
	}
	i := merge.RoundRat(n, 0, false).Num()
	switch {
	case i.Cmp(big.NewInt(lo)) < 0:
		return lo
	case i.Cmp(big.NewInt(hi)) > 0:
		return hi
	}
	return i.Int64()
}

func concat(_ *evalRow, a []sqlValue) sqlValue {
	var b strings.Builder
	for _, v := range a {
		b.Write(valueText(v))
	}
	return textValue(a[0], b.String())
}

func concatWS(_ *evalRow, a []sqlValue) sqlValue {
	if a[0].Null {
		return a[0]
	}
	var parts []string
	for _, v := range a[1:] {
		if !v.Null {
			parts = append(parts, string(valueText(v)))
		}
	}
	return textValue(a[0], strings.Join(parts, string(valueText(a[0]))))
}

func ifFunc(_ *evalRow, a []sqlValue) sqlValue {
	if t, ok := a[0].Truth(); ok && t {
		return a[1]
	}
	return a[2]
}

// extreme is GREATEST (or LEAST): the largest (smallest) argument, compared numerically
// when any is a number, else by collation.
func extreme(greatest bool) func(*evalRow, []sqlValue) sqlValue {
	return func(r *evalRow, a []sqlValue) sqlValue {
		best := a[0]
		for _, v := range a[1:] {
			c := r.compare(v, best)
			if (greatest && c > 0) || (!greatest && c < 0) {
				best = v
			}
		}
		return best
	}
}

func pad(left bool) func(*evalRow, []sqlValue) sqlValue {
	return func(_ *evalRow, a []sqlValue) sqlValue {
		s, p := []rune(string(valueText(a[0]))), []rune(string(valueText(a[2])))
		n := clampInt(a[1], -1, maxTextLen)
		switch {
		case n < 0:
			return sqlValue{Null: true}
		case int(n) <= len(s):
			return textValue(a[0], string(s[:n]))
		case len(p) == 0:
			return sqlValue{Null: true}
		}
		fill := make([]rune, 0, int(n)-len(s))
		for len(fill) < int(n)-len(s) {
			fill = append(fill, p[len(fill)%len(p)])
		}
		if left {
			return textValue(a[0], string(fill)+string(s))
		}
		return textValue(a[0], string(s)+string(fill))
	}
}

func repeat(_ *evalRow, a []sqlValue) sqlValue {
	s := string(valueText(a[0]))
	n := clampInt(a[1], 0, maxTextLen)
	if int64(len(s))*n > maxTextLen {
		return sqlValue{Null: true}
	}
	return textValue(a[0], strings.Repeat(s, int(n)))
}

func leftRight(left bool) func(*evalRow, []sqlValue) sqlValue {
	return func(_ *evalRow, a []sqlValue) sqlValue {
		s := []rune(string(valueText(a[0])))
		n := int(clampInt(a[1], 0, int64(len(s))))
		if left {
			return textValue(a[0], string(s[:n]))
		}
		return textValue(a[0], string(s[len(s)-n:]))
	}
}

// substring is SUBSTRING(s, pos[, len]): pos counts from 1, or from the end when negative;
// pos 0 or beyond the end gives ”.
func substring(_ *evalRow, a []sqlValue) sqlValue {
	s := []rune(string(valueText(a[0])))
	size := int64(len(s))
	pos := clampInt(a[1], -size-1, size+1)
	length := size
	if len(a) == 3 {
		length = clampInt(a[2], 0, size)
	}
	switch {
	case pos == 0 || pos > size || pos < -size:
		return textValue(a[0], "")
	case pos < 0:
		pos += size
	default:
		pos--
	}
	end := min(pos+length, size)
	return textValue(a[0], string(s[pos:end]))
}

func replace(_ *evalRow, a []sqlValue) sqlValue {
	s, from, to := string(valueText(a[0])), string(valueText(a[1])), string(valueText(a[2]))
	if from == "" {
		return textValue(a[0], s)
	}
	return textValue(a[0], strings.ReplaceAll(s, from, to))
}

func reverse(_ *evalRow, a []sqlValue) sqlValue {
	s := []rune(string(valueText(a[0])))
	slices.Reverse(s)
	return textValue(a[0], string(s))
}

// formatNumber is FORMAT(x, d) in the en_US locale: x rounded to d decimals (at most 38),
// thousands grouped with commas.
func formatNumber(_ *evalRow, a []sqlValue) sqlValue {
	d := int(clampInt(a[1], 0, 38))
	n, _ := a[0].number()
	if a[0].flt || a[0].num == nil {
		n = new(big.Rat).SetFloat64(floatOf(a[0]))
		if n == nil {
			return sqlValue{Null: true}
		}
	}
	s := merge.FormatRat(n, d)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if d > 0 {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return sqlValue{str: []byte(b.String())}
}
