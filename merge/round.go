package merge

import (
	"math/big"
	"strings"
)

// RoundRat rounds r to d decimal places (d < 0: to tens, hundreds, ...) as MySQL rounds exact
// values: half away from zero, or toward zero when truncate is set (TRUNCATE). The result
// is a new value.
func RoundRat(r *big.Rat, d int, truncate bool) *big.Rat {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(d))), nil)
	x := new(big.Rat).Set(r)
	if d >= 0 {
		x.Mul(x, new(big.Rat).SetInt(scale))
	} else {
		x.Quo(x, new(big.Rat).SetInt(scale))
	}
	n := roundInt(x, truncate)
	out := new(big.Rat).SetInt(n)
	if d >= 0 {
		return out.Quo(out, new(big.Rat).SetInt(scale))
	}
	return out.Mul(out, new(big.Rat).SetInt(scale))
}

// roundInt is x rounded to an integer, half away from zero (or toward zero).
func roundInt(x *big.Rat, truncate bool) *big.Int {
	q, m := new(big.Int).QuoRem(x.Num(), x.Denom(), new(big.Int))
	if truncate || m.Sign() == 0 {
		return q
	}
	twice := new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2))
	if twice.Cmp(x.Denom()) >= 0 {
		if x.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q
}

// FormatRat writes r with exactly scale decimals, rounded half away from zero: how MySQL
// prints a DECIMAL result of that scale (scale 0: an integer).
func FormatRat(r *big.Rat, scale int) string {
	scale = max(scale, 0)
	n := roundInt(new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))), false)
	neg := n.Sign() < 0
	digits := new(big.Int).Abs(n).String()
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

func abs(d int) int {
	if d < 0 {
		return -d
	}
	return d
}

// divPrecisionIncrement is MySQL's div_precision_increment at its default.
const divPrecisionIncrement = 4

// digitsPerWord is how many decimal digits one word of MySQL's decimal type holds.
const digitsPerWord = 9

// DivScale is the number of fraction digits MySQL's decimal division keeps internally for a
// dividend of the given scale: scale + div_precision_increment, rounded up to whole words of
// nine digits (the quotient is truncated there; only the final result is rounded).
func DivScale(dividendScale int) int {
	n := dividendScale + divPrecisionIncrement
	return (n + digitsPerWord - 1) / digitsPerWord * digitsPerWord
}

// RatScale is the number of fraction digits r needs in decimal (capped at limit; a value
// with no finite decimal form gets limit).
func RatScale(r *big.Rat, limit int) int {
	d := new(big.Int).Set(r.Denom())
	ten, two, five := big.NewInt(10), big.NewInt(2), big.NewInt(5)
	m := new(big.Int)
	for s := 0; s < limit; s++ {
		if d.Cmp(big.NewInt(1)) == 0 {
			return s
		}
		g := new(big.Int).GCD(nil, nil, d, ten)
		if g.Cmp(big.NewInt(1)) == 0 {
			return limit
		}
		// d divides 10^k for some k: strip a factor of 10 (or 2 or 5).
		switch {
		case m.Mod(d, ten).Sign() == 0:
			d.Quo(d, ten)
		case m.Mod(d, two).Sign() == 0:
			d.Quo(d, two)
		default:
			d.Quo(d, five)
		}
	}
	return limit
}
