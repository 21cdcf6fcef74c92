// Package merge combines the result streams of several shards into the one result a single
// MySQL server would have returned: k-way merge of sorted streams, LIMIT/OFFSET, merging of
// partial aggregates and groups, DISTINCT. It works on decoded text-protocol rows and does no
// I/O of its own; the router feeds it one Stream per shard.
package merge

import (
	"bytes"
	"math/big"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Kind is how values of a column compare.
type Kind uint8

const (
	// KindString compares by collation: callers give a weight column (WEIGHT_STRING) and
	// the bytes of the weights are compared; without one, the bytes of the values.
	KindString Kind = iota
	KindSigned
	KindUnsigned
	KindDecimal
	KindFloat
	// KindTemporal is DATE, DATETIME, TIMESTAMP: their text form sorts as it reads.
	KindTemporal
	// KindTime is TIME, which may be negative and exceed 24 hours.
	KindTime
)

// KindOf returns how values of a column of MySQL type typ with column flags compare.
func KindOf(typ byte, flags uint16) Kind {
	switch typ {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG,
		mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_YEAR:
		if flags&mysql.UNSIGNED_FLAG != 0 {
			return KindUnsigned
		}
		return KindSigned
	case mysql.MYSQL_TYPE_DECIMAL, mysql.MYSQL_TYPE_NEWDECIMAL:
		return KindDecimal
	case mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE:
		return KindFloat
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIMESTAMP,
		mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP2:
		return KindTemporal
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		return KindTime
	}
	return KindString
}

// Compare orders two non-NULL values of kind k given in their text form.
func Compare(k Kind, a, b []byte) int {
	switch k {
	case KindSigned:
		x, err1 := strconv.ParseInt(string(a), 10, 64)
		y, err2 := strconv.ParseInt(string(b), 10, 64)
		if err1 == nil && err2 == nil {
			return cmpOrdered(x, y)
		}
		return compareDecimal(a, b)
	case KindUnsigned:
		x, err1 := strconv.ParseUint(string(a), 10, 64)
		y, err2 := strconv.ParseUint(string(b), 10, 64)
		if err1 == nil && err2 == nil {
			return cmpOrdered(x, y)
		}
		return compareDecimal(a, b)
	case KindDecimal:
		return compareDecimal(a, b)
	case KindFloat:
		x, _ := strconv.ParseFloat(string(a), 64)
		y, _ := strconv.ParseFloat(string(b), 64)
		return cmpOrdered(x, y)
	case KindTime:
		return cmpOrdered(timeMicros(a), timeMicros(b))
	}
	return bytes.Compare(a, b)
}

func cmpOrdered[T int64 | uint64 | float64](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// timeMicros reads a TIME value ("-838:59:59.000000") as microseconds.
func timeMicros(b []byte) int64 {
	s := string(b)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var frac int64
	if i := strings.IndexByte(s, '.'); i >= 0 {
		f := (s[i+1:] + "000000")[:6]
		frac, _ = strconv.ParseInt(f, 10, 64)
		s = s[:i]
	}
	var total int64
	for _, part := range strings.Split(s, ":") {
		n, _ := strconv.ParseInt(part, 10, 64)
		total = total*60 + n
	}
	total = total*1_000_000 + frac
	if neg {
		return -total
	}
	return total
}

// Dec is an exact decimal number: Int × 10^-Scale.
type Dec struct {
	Int   big.Int
	Scale int
}

// ParseDec reads a decimal in MySQL's text form ("-12.340"); ok is false for anything else.
func ParseDec(b []byte) (Dec, bool) {
	var d Dec
	s := string(b)
	if i := strings.IndexByte(s, '.'); i >= 0 {
		d.Scale = len(s) - i - 1
		s = s[:i] + s[i+1:]
	}
	if _, ok := d.Int.SetString(s, 10); !ok {
		return Dec{}, false
	}
	return d, true
}

// rescale returns d's integer at a larger scale.
func (d *Dec) rescale(scale int) *big.Int {
	if scale == d.Scale {
		return &d.Int
	}
	f := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale-d.Scale)), nil)
	return f.Mul(f, &d.Int)
}

// Add adds x to d.
func (d *Dec) Add(x *Dec) {
	scale := max(d.Scale, x.Scale)
	sum := new(big.Int).Add(d.rescale(scale), x.rescale(scale))
	d.Int.Set(sum)
	d.Scale = scale
}

// Cmp compares d and x.
func (d *Dec) Cmp(x *Dec) int {
	scale := max(d.Scale, x.Scale)
	return d.rescale(scale).Cmp(x.rescale(scale))
}

// String formats d with its scale, as MySQL prints a DECIMAL.
func (d *Dec) String() string {
	s := new(big.Int).Abs(&d.Int).String()
	if d.Scale > 0 {
		if len(s) <= d.Scale {
			s = strings.Repeat("0", d.Scale-len(s)+1) + s
		}
		s = s[:len(s)-d.Scale] + "." + s[len(s)-d.Scale:]
	}
	if d.Int.Sign() < 0 {
		s = "-" + s
	}
	return s
}

// Quo returns d / n rounded half away from zero to scale digits, as MySQL's AVG does.
func (d *Dec) Quo(n int64, scale int) Dec { return d.quo(n, scale, false) }

// QuoTrunc returns d / n truncated to scale digits: the value MySQL's decimal division holds
// internally, before an expression's result is rounded to its column's scale.
func (d *Dec) QuoTrunc(n int64, scale int) Dec { return d.quo(n, scale, true) }

func (d *Dec) quo(n int64, scale int, truncate bool) Dec {
	num := new(big.Int).Abs(&d.Int)
	den := big.NewInt(n)
	if den.Sign() < 0 {
		den.Neg(den)
	}
	ten := big.NewInt(10)
	if scale >= d.Scale {
		num.Mul(num, new(big.Int).Exp(ten, big.NewInt(int64(scale-d.Scale)), nil))
	} else {
		den.Mul(den, new(big.Int).Exp(ten, big.NewInt(int64(d.Scale-scale)), nil))
	}
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if !truncate && r.Lsh(r, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if (d.Int.Sign() < 0) != (n < 0) {
		q.Neg(q)
	}
	var out Dec
	out.Int.Set(q)
	out.Scale = scale
	return out
}

func compareDecimal(a, b []byte) int {
	x, ok1 := ParseDec(a)
	y, ok2 := ParseDec(b)
	if !ok1 || !ok2 {
		f, _ := strconv.ParseFloat(string(a), 64)
		g, _ := strconv.ParseFloat(string(b), 64)
		return cmpOrdered(f, g)
	}
	return x.Cmp(&y)
}

// FormatFloat prints a DOUBLE as MySQL does (shortest form that reads back the same).
func FormatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if i := strings.Index(s, "e+"); i >= 0 {
		s = s[:i+1] + s[i+2:]
	}
	return s
}
