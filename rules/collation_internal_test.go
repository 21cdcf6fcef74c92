package rules

import (
	"strconv"
	"strings"
	"testing"
)

// TestParseInt: parseInt agrees with strconv.ParseInt after trimming ASCII spaces.
func TestParseInt(t *testing.T) {
	inputs := []string{
		"", " ", "0", "-0", "+0", "42", " 42 ", "\t-42\n", "+", "-", "4 2", "042", "--1", "+-1", "1e3", "0x10",
		"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
		"18446744073709551615", "18446744073709551616", "99999999999999999999", "922337203685477580", "9223372036854775799",
	}
	for _, in := range inputs {
		want, err := strconv.ParseInt(strings.Trim(in, " \t\n\v\f\r"), 10, 64)
		got, ok := parseInt([]byte(in))
		if ok != (err == nil) || (ok && got != want) {
			t.Errorf("parseInt(%q) = %d, %v; strconv: %d, %v", in, got, ok, want, err)
		}
	}
}

// TestCollationNumberCharWeights: keyInt reads the weights of numberChars as their code
// points under utf8mb4_general_ci and utf8mb4_bin.
func TestCollationNumberCharWeights(t *testing.T) {
	for i := range len(numberChars) {
		r := rune(numberChars[i])
		if w := generalCIWeight(r); w != uint16(r) {
			t.Errorf("general_ci: %q weighs %#x", r, w)
		}
	}
	uca, err := decodeUCA(unicodeCIData)
	if err != nil {
		t.Fatal(err)
	}
	if len(uca.num) != len(numberChars) {
		t.Errorf("unicode_ci: %d of the %d characters of numbers weigh one weight", len(uca.num), len(numberChars))
	}
}
