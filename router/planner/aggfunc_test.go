package planner

import (
	"math/big"
	"strings"
	"testing"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/wire"
)

// Values for the evaluator tests: dec("12.5", 2) is a DECIMAL of scale 2, integer(5) a
// BIGINT, double(0.5) a DOUBLE, text8("x") a string of utf8mb4_general_ci, null() NULL.
func dec(s string, scale int) sqlValue {
	n, _ := new(big.Rat).SetString(s)
	return sqlValue{num: n, typ: numFormat{known: true, kind: merge.KindDecimal, dec: scale}}
}

func integer(n int64) sqlValue { return intValue(n) }

func double(f float64) sqlValue {
	v := floatValue(f)
	v.typ = numFormat{known: true, kind: merge.KindFloat, dec: notFixedDec}
	return v
}

func text8(s string) sqlValue { return sqlValue{str: []byte(s), coll: 45} }

func null() sqlValue { return sqlValue{Null: true} }

func valueString(v sqlValue) string {
	if v.Null {
		return "NULL"
	}
	return string(valueText(v))
}

// TestStringFuncs evaluates each function of aggfunc.go over values as MariaDB answers them
// (the expected texts are MariaDB 10.11's).
func TestStringFuncs(t *testing.T) {
	for _, c := range []struct {
		fn   string
		args []sqlValue
		want string
	}{
		{ast.Concat, []sqlValue{text8("n="), integer(5)}, "n=5"},
		{ast.Concat, []sqlValue{text8("avg "), dec("12.5", 6), text8(" "), double(0.1)}, "avg 12.500000 0.1"},
		{ast.Concat, []sqlValue{text8("a"), null()}, "NULL"},
		{ast.ConcatWS, []sqlValue{text8("-"), text8("a"), null(), integer(3)}, "a-3"},
		{ast.ConcatWS, []sqlValue{null(), text8("a")}, "NULL"},
		{ast.If, []sqlValue{integer(1), text8("many"), text8("one")}, "many"},
		{ast.If, []sqlValue{null(), text8("many"), text8("one")}, "one"},
		{ast.If, []sqlValue{dec("0.0", 1), text8("many"), integer(0)}, "0"},
		{ast.Greatest, []sqlValue{integer(3), dec("2.50", 2), integer(7)}, "7"},
		{ast.Least, []sqlValue{integer(3), dec("2.50", 2), integer(7)}, "2.50"},
		{ast.Least, []sqlValue{integer(3), null()}, "NULL"},
		{ast.Greatest, []sqlValue{text8("bob"), text8("Alice"), text8("carl")}, "carl"},
		{ast.Least, []sqlValue{text8("bob"), text8("Alice"), text8("émile")}, "Alice"},
		{ast.Length, []sqlValue{text8("émile")}, "6"},
		{ast.CharLength, []sqlValue{text8("émile")}, "5"},
		{ast.Length, []sqlValue{dec("-1.5", 3)}, "6"},
		{ast.Upper, []sqlValue{text8("émile")}, "ÉMILE"},
		{ast.Lower, []sqlValue{text8("ABC")}, "abc"},
		{ast.Upper, []sqlValue{{str: []byte("abc"), coll: binaryCollation}}, "abc"},
		{ast.Lpad, []sqlValue{integer(42), integer(5), text8("0")}, "00042"},
		{ast.Lpad, []sqlValue{text8("hello"), integer(3), text8("0")}, "hel"},
		{ast.Rpad, []sqlValue{text8("ab"), integer(7), text8("xy")}, "abxyxyx"},
		{ast.Rpad, []sqlValue{text8("ab"), integer(4), text8("")}, "NULL"},
		{ast.Lpad, []sqlValue{text8("ab"), integer(-1), text8("x")}, "NULL"},
		{ast.Repeat, []sqlValue{text8("ab"), integer(3)}, "ababab"},
		{ast.Repeat, []sqlValue{text8("ab"), integer(-3)}, ""},
		{ast.Left, []sqlValue{dec("123.45", 2), integer(3)}, "123"},
		{ast.Right, []sqlValue{text8("émile"), integer(4)}, "mile"},
		{ast.Right, []sqlValue{text8("ab"), integer(9)}, "ab"},
		{ast.Substring, []sqlValue{text8("#17"), integer(2)}, "17"},
		{ast.Substring, []sqlValue{text8("abcdef"), integer(-3), integer(2)}, "de"},
		{ast.Substring, []sqlValue{text8("abcdef"), integer(0)}, ""},
		{ast.Substring, []sqlValue{text8("abcdef"), integer(9)}, ""},
		{ast.Replace, []sqlValue{dec("12.50", 2), text8("."), text8(",")}, "12,50"},
		{ast.Reverse, []sqlValue{integer(123)}, "321"},
		{ast.LTrim, []sqlValue{text8("  a ")}, "a "},
		{ast.RTrim, []sqlValue{text8("  a ")}, "  a"},
		{ast.Sign, []sqlValue{dec("-0.5", 1)}, "-1"},
		{ast.Sign, []sqlValue{integer(0)}, "0"},
		{ast.Mod, []sqlValue{integer(17), integer(5)}, "2"},
		{ast.Mod, []sqlValue{dec("-7.5", 1), integer(2)}, "-1.5"},
		{ast.Mod, []sqlValue{integer(1), integer(0)}, "NULL"},
		{ast.Pow, []sqlValue{integer(3), integer(2)}, "9"},
		{ast.Sqrt, []sqlValue{integer(2)}, "1.4142135623730951"},
		{ast.Sqrt, []sqlValue{integer(-2)}, "NULL"},
		{ast.Format, []sqlValue{dec("1234567.891", 3), integer(2)}, "1,234,567.89"},
		{ast.Format, []sqlValue{dec("-1234.5", 1), integer(0)}, "-1,235"},
		{ast.Format, []sqlValue{integer(12), integer(3)}, "12.000"},
	} {
		spec, ok := stringFunc(c.fn)
		if !ok {
			t.Fatalf("%s: not a function of aggfunc.go", c.fn)
		}
		r := &evalRow{}
		if got := valueString(spec.eval(r, c.args)); got != c.want {
			t.Errorf("%s(%v) = %q, want %q", strings.ToUpper(c.fn), c.args, got, c.want)
		}
	}
	if _, ok := stringFunc("md5"); ok {
		t.Error("MD5 is among the functions over aggregates")
	}
}

// TestValueTypes pins how values take a column's type and print, and MySQL's arithmetic.
func TestValueTypes(t *testing.T) {
	decimal := wire.ColDef{Decimals: 2}
	varchar := wire.ColDef{Decimals: 39, Collation: 45}
	for _, c := range []struct {
		name string
		v    sqlValue
		kind merge.Kind
		def  wire.ColDef
		want string
	}{
		{"an integer in a DECIMAL(.,2) column", integer(5), merge.KindDecimal, decimal, "5.00"},
		{"a decimal rounded half up to the column's scale", dec("2.345", 9), merge.KindDecimal, decimal, "2.35"},
		{"a decimal in a string column keeps its own scale", dec("2.5", 6), merge.KindString, varchar, "2.500000"},
		{"an integer in a string column", integer(-7), merge.KindString, varchar, "-7"},
		{"a double in a string column", double(1.0 / 3), merge.KindString, varchar, "0.3333333333333333"},
		{"a double column without fixed decimals", arith(opcode.Mul, double(0.1), integer(3)), merge.KindFloat, wire.ColDef{Decimals: 39}, "0.30000000000000004"},
		{"exact decimal arithmetic", arith(opcode.Mul, dec("0.1", 1), integer(3)), merge.KindDecimal, wire.ColDef{Decimals: 1}, "0.3"},
		{"division by zero", arith(opcode.Div, integer(1), integer(0)), merge.KindDecimal, decimal, "NULL"},
		{"a string in arithmetic is a double", arith(opcode.Plus, text8("1.5"), integer(1)), merge.KindFloat, wire.ColDef{Decimals: 39}, "2.5"},
	} {
		if got := valueString(coerce(c.v, c.kind, c.def)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestCompareCollation: strings compare by their column's collation (PAD SPACE, case- and
// accent-insensitive for utf8mb4_general_ci), by bytes in the binary character set, and
// numerically against a number.
func TestCompareCollation(t *testing.T) {
	r := &evalRow{}
	bin := func(s string) sqlValue { return sqlValue{str: []byte(s), coll: binaryCollation} }
	for _, c := range []struct {
		a, b sqlValue
		want int
	}{
		{text8("Gift"), text8("gift"), 0},
		{text8("gift  "), text8("gift"), 0},
		{text8("émile"), text8("Emile"), 0},
		{text8("a"), text8("B"), -1},
		{bin("a"), bin("B"), 1},
		{text8("10"), integer(9), 1},
		{dec("2.50", 2), integer(2), 1},
		{double(0.5), dec("0.5", 1), 0},
		{sqlValue{str: []byte("x"), coll: 9999}, sqlValue{str: []byte("X")}, 1},
	} {
		if got := r.compare(c.a, c.b); got != c.want {
			t.Errorf("compare(%s, %s) = %d, want %d", valueString(c.a), valueString(c.b), got, c.want)
		}
	}
}
