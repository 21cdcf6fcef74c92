package merge

import (
	"math/big"
	"testing"
)

func TestRoundRat(t *testing.T) {
	for _, c := range []struct {
		in       string
		d        int
		truncate bool
		want     string
	}{
		{"1.005", 2, false, "1.01"},
		{"-1.005", 2, false, "-1.01"},
		{"1.004999", 2, false, "1.00"},
		{"2/3", 4, false, "0.6667"},
		{"-2/3", 4, false, "-0.6667"},
		{"1.999", 2, true, "1.99"},
		{"-1.999", 2, true, "-1.99"},
		{"155", -1, false, "160"},
		{"-155", -1, false, "-160"},
		{"155", -2, true, "100"},
		{"7/2", 0, false, "4"},
	} {
		r, ok := new(big.Rat).SetString(c.in)
		if !ok {
			t.Fatalf("bad input %q", c.in)
		}
		got := RoundRat(r, c.d, c.truncate)
		if s := FormatRat(got, max(c.d, 0)); s != c.want {
			t.Errorf("RoundRat(%s, %d, %v) = %s, want %s", c.in, c.d, c.truncate, s, c.want)
		}
	}
}

func TestFormatRat(t *testing.T) {
	for _, c := range []struct {
		in    string
		scale int
		want  string
	}{
		{"0", 2, "0.00"},
		{"1/3", 4, "0.3333"},
		{"-1/3", 4, "-0.3333"},
		{"-1/300", 2, "0.00"},
		{"-1/200", 2, "-0.01"},
		{"12345/100", 0, "123"},
		{"25/2", 0, "13"},
		{"0.05", 3, "0.050"},
		{"-7", 1, "-7.0"},
	} {
		r, _ := new(big.Rat).SetString(c.in)
		if got := FormatRat(r, c.scale); got != c.want {
			t.Errorf("FormatRat(%s, %d) = %s, want %s", c.in, c.scale, got, c.want)
		}
	}
}
