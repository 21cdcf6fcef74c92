package rules

import (
	"fmt"
	"slices"
	"unicode/utf8"
)

// Collation names supported for text shard keys.
const (
	CollationGeneralCI = "utf8mb4_general_ci" // the default: MariaDB's default for utf8mb4
	CollationBin       = "utf8mb4_bin"
)

// Collation is the comparison rule text shard keys follow, so that two keys MariaDB holds
// equal under the key column's collation always land on the same slot. Its zero value is
// utf8mb4_general_ci. Collations are immutable values, safe for concurrent use.
type Collation struct{ bin bool }

// LookupCollation returns the named collation (utf8mb4_general_ci or utf8mb4_bin; "" is
// the default, utf8mb4_general_ci).
func LookupCollation(name string) (Collation, error) {
	switch name {
	case "", CollationGeneralCI:
		return Collation{}, nil
	case CollationBin:
		return Collation{bin: true}, nil
	}
	return Collation{}, fmt.Errorf("collation %q: want %s or %s", name, CollationGeneralCI, CollationBin)
}

// Name is the collation's MariaDB name.
func (c Collation) Name() string {
	if c.bin {
		return CollationBin
	}
	return CollationGeneralCI
}

// AppendKey appends to dst the comparison key of s: MariaDB's WEIGHT_STRING(s COLLATE c)
// without the weights of trailing spaces. Both collations are PAD SPACE (trailing spaces do
// not count in =, though WEIGHT_STRING keeps them), so s and t are equal under c exactly
// when their keys are equal.
//
// utf8mb4_general_ci weighs each character in two big-endian bytes: a BMP code point by
// the table generated from MariaDB (generalCIWeights, identity elsewhere), a supplementary
// one as 0xFFFD. utf8mb4_bin weighs each character as its code point in three bytes. A byte
// that is not UTF-8 counts as U+FFFD (a utf8mb4 column cannot hold one).
func (c Collation) AppendKey(dst []byte, s string) []byte {
	start := len(dst)
	for _, r := range s {
		if c.bin {
			dst = append(dst, byte(r>>16), byte(r>>8), byte(r))
		} else {
			w := generalCIWeight(r)
			dst = append(dst, byte(w>>8), byte(w))
		}
	}
	space := []byte{0x00, 0x20}
	if c.bin {
		space = []byte{0x00, 0x00, 0x20}
	}
	for len(dst)-start >= len(space) && string(dst[len(dst)-len(space):]) == string(space) {
		dst = dst[:len(dst)-len(space)]
	}
	return dst
}

// generalCIWeight is the utf8mb4_general_ci weight of one character.
func generalCIWeight(r rune) uint16 {
	if r > 0xFFFF {
		return utf8.RuneError
	}
	key := uint32(r) << 16
	i, _ := slices.BinarySearch(generalCIWeights[:], key)
	if i < len(generalCIWeights) && generalCIWeights[i]>>16 == uint32(r) {
		return uint16(generalCIWeights[i])
	}
	return uint16(r)
}
