package planner

import (
	"bytes"
	"cmp"
	"math"
	"math/big"
	"strconv"

	"github.com/pingcap/tidb/pkg/parser/opcode"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// valueText is v as MySQL converts it to a string: a number by the type it came from
// (a DECIMAL with its scale, a DOUBLE in its shortest form), a string as is.
func valueText(v sqlValue) []byte {
	if v.num == nil {
		return v.str
	}
	t := v.typ
	switch {
	case !t.known && v.flt:
		t = numFormat{known: true, kind: merge.KindFloat, dec: notFixedDec}
	case !t.known:
		t = numFormat{known: true, kind: merge.KindDecimal, dec: merge.RatScale(v.num, 30)}
	}
	switch t.kind {
	case merge.KindSigned, merge.KindUnsigned:
		return []byte(merge.FormatRat(v.num, 0))
	case merge.KindFloat:
		f, _ := v.num.Float64()
		if t.dec > 0 && t.dec < notFixedDec {
			return strconv.AppendFloat(nil, f, 'f', t.dec, 64)
		}
		return []byte(merge.FormatFloat(f))
	}
	return []byte(merge.FormatRat(v.num, t.dec))
}

// coerce gives v the type of a column of kind k (the shards' definition def): a number
// takes the column's numeric type; in a string column it becomes its text (by its own type).
func coerce(v sqlValue, k merge.Kind, def wire.ColDef) sqlValue {
	if v.Null {
		return v
	}
	switch k {
	case merge.KindSigned, merge.KindUnsigned, merge.KindDecimal, merge.KindFloat:
		if v.num != nil {
			v.typ = numFormat{known: true, kind: k, dec: int(def.Decimals)}
			v.flt = k == merge.KindFloat
		}
		return v
	}
	if v.num != nil {
		return sqlValue{str: valueText(v), coll: def.Collation}
	}
	if v.coll == 0 {
		v.coll = def.Collation
	}
	return v
}

// floatOf is v as a DOUBLE.
func floatOf(v sqlValue) float64 {
	if v.num == nil {
		f, _ := strconv.ParseFloat(string(bytes.TrimSpace(v.str)), 64)
		return f
	}
	f, _ := v.num.Float64()
	return f
}

func floatValue(f float64) sqlValue {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return sqlValue{Null: true}
	}
	return sqlValue{num: new(big.Rat).SetFloat64(f), flt: true}
}

// arith is a + b, a - b, a * b or a / b: NULL with a NULL operand or a zero divisor;
// floating-point when either operand is a DOUBLE or a string (MySQL reads it as one).
func arith(op opcode.Op, a, b sqlValue) sqlValue {
	if a.Null || b.Null {
		return sqlValue{Null: true}
	}
	if a.flt || b.flt || a.num == nil || b.num == nil {
		x, y := floatOf(a), floatOf(b)
		switch op {
		case opcode.Plus:
			return floatValue(x + y)
		case opcode.Minus:
			return floatValue(x - y)
		case opcode.Mul:
			return floatValue(x * y)
		}
		if y == 0 {
			return sqlValue{Null: true}
		}
		return floatValue(x / y)
	}
	p, q := a.num, b.num
	out := new(big.Rat)
	switch op {
	case opcode.Plus:
		out.Add(p, q)
	case opcode.Minus:
		out.Sub(p, q)
	case opcode.Mul:
		out.Mul(p, q)
	default:
		if q.Sign() == 0 {
			return sqlValue{Null: true}
		}
		out = divValue(p, q)
	}
	return sqlValue{num: out}
}

// collations caches the collations the evaluator compares strings by, per statement.
type collations map[uint16]*rules.Collation

// Collation ids of the collations rules implements (and of their utf8mb3 twins, which
// weigh every character utf8mb3 holds the same way).
var collationNames = map[uint16]string{
	33: rules.CollationGeneralCI, 45: rules.CollationGeneralCI,
	83: rules.CollationBin, 46: rules.CollationBin,
	192: rules.CollationUnicodeCI, 224: rules.CollationUnicodeCI,
}

// binaryCollation is the id of the binary character set: bytes compare as they are.
const binaryCollation = 63

// compare orders two non-NULL values as MySQL does: numerically when either is a number,
// else by the collation of a string that came from a column (byte order for the binary
// character set and collations the proxy does not implement).
func (r *evalRow) compare(a, b sqlValue) int {
	if a.num != nil || b.num != nil {
		if a.flt || b.flt {
			return cmp.Compare(floatOf(a), floatOf(b))
		}
		p, _ := a.number()
		q, _ := b.number()
		return p.Cmp(q)
	}
	id := a.coll
	if id == 0 {
		id = b.coll
	}
	if c := r.Collation(id); c != nil {
		return bytes.Compare(c.AppendKey(nil, string(a.str)), c.AppendKey(nil, string(b.str)))
	}
	return bytes.Compare(a.str, b.str)
}

// Collation returns the collation of id, or nil for byte order.
func (r *evalRow) Collation(id uint16) *rules.Collation {
	if id == binaryCollation {
		return nil
	}
	if id == 0 {
		id = 45 // two literals: the connection's utf8mb4_general_ci
	}
	if c, ok := r.colls[id]; ok {
		return c
	}
	var out *rules.Collation
	if name, ok := collationNames[id]; ok {
		if c, err := rules.LookupCollation(name); err == nil {
			out = &c
		}
	}
	if r.colls == nil {
		r.colls = collations{}
	}
	r.colls[id] = out
	return out
}
