package rules

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// Collation names supported for text shard keys.
const (
	CollationGeneralCI = "utf8mb4_general_ci" // the default: MariaDB's default for utf8mb4
	CollationBin       = "utf8mb4_bin"
	CollationUnicodeCI = "utf8mb4_unicode_ci"
)

// Collation is the comparison rule text shard keys follow, so that two keys MariaDB holds
// equal under the key column's collation always land on the same slot. Its zero value is
// utf8mb4_general_ci. Collations are immutable values, safe for concurrent use.
type Collation struct {
	bin bool
	uca *ucaTable // utf8mb4_unicode_ci
}

// LookupCollation returns the named collation: utf8mb4_general_ci ("" too: the default),
// utf8mb4_bin or utf8mb4_unicode_ci. utf8mb4_unicode_ci decodes its table (about 1 ms).
func LookupCollation(name string) (Collation, error) {
	switch name {
	case "", CollationGeneralCI:
		return Collation{}, nil
	case CollationBin:
		return Collation{bin: true}, nil
	case CollationUnicodeCI:
		t, err := decodeUCA(unicodeCIData)
		if err != nil {
			return Collation{}, fmt.Errorf("collation %s: %w", name, err)
		}
		return Collation{uca: t}, nil
	}
	return Collation{}, fmt.Errorf("collation %q: want %s, %s or %s", name, CollationGeneralCI, CollationBin, CollationUnicodeCI)
}

// Name is the collation's MariaDB name.
func (c Collation) Name() string {
	switch {
	case c.bin:
		return CollationBin
	case c.uca != nil:
		return CollationUnicodeCI
	}
	return CollationGeneralCI
}

// AppendKey appends to dst the comparison key of s: MariaDB's WEIGHT_STRING(s COLLATE c)
// without the weights of trailing spaces. The three collations are PAD SPACE (trailing
// spaces do not count in =, though WEIGHT_STRING keeps them), so s and t are equal under c
// exactly when their keys are equal.
//
// utf8mb4_general_ci weighs each character in two big-endian bytes: a BMP code point by
// the table generated from MariaDB (generalCIWeights, identity elsewhere), a supplementary
// one as 0xFFFD. utf8mb4_unicode_ci weighs a BMP character as zero or more two-byte weights
// from its generated table (unicodeCIData, the UCA implicit weights elsewhere), a
// supplementary one as 0xFFFD. utf8mb4_bin weighs each character as its code point in three
// bytes. A byte that is not UTF-8 counts as U+FFFD (a utf8mb4 column cannot hold one).
func (c Collation) AppendKey(dst []byte, s string) []byte {
	start := len(dst)
	for _, r := range s {
		dst = c.appendWeights(dst, r)
	}
	var buf [3]byte
	space := c.appendWeights(buf[:0], ' ')
	for len(dst)-start >= len(space) && bytes.HasSuffix(dst, space) {
		dst = dst[:len(dst)-len(space)]
	}
	return dst
}

func (c Collation) appendWeights(dst []byte, r rune) []byte {
	switch {
	case c.bin:
		return append(dst, byte(r>>16), byte(r>>8), byte(r))
	case c.uca != nil:
		return c.uca.appendWeights(dst, r)
	}
	w := generalCIWeight(r)
	return append(dst, byte(w>>8), byte(w))
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

// numberChars are the characters whose spelling decides whether text is a whole number
// (strconv.ParseInt after trimming ASCII spaces). Under utf8mb4_general_ci and utf8mb4_bin
// each weighs its own code point (TestCollationNumberCharWeights).
const numberChars = "0123456789+- \t\n\v\f\r"

// keyInt reports whether key is the key of a text that reads as a whole number, and which.
// It decides on the key, not the text, so that every text MariaDB holds equal to a number's
// (under utf8mb4_unicode_ci, '４２' and '٤٢' equal '42') decides alike: each weight must be
// that of one of numberChars, and the text those spell must parse.
func (c Collation) keyInt(key []byte) (int64, bool) {
	width := 2
	if c.bin {
		width = 3
	}
	if len(key) == 0 || len(key) > 32*width || len(key)%width != 0 {
		return 0, false
	}
	var buf [32]byte
	text := buf[:0]
	for i := 0; i < len(key); i += width {
		var ch byte
		switch {
		case c.uca != nil:
			ch = c.uca.num[uint16(key[i])<<8|uint16(key[i+1])]
		case c.bin && key[i] == 0 && key[i+1] == 0:
			ch = key[i+2]
		case !c.bin && key[i] == 0:
			ch = key[i+1]
		}
		if ch == 0 || strings.IndexByte(numberChars, ch) < 0 {
			return 0, false
		}
		text = append(text, ch)
	}
	n, ok := parseInt(text)
	return n, ok
}

// parseInt is strconv.ParseInt(strings.Trim(text, ASCII spaces), 10, 64) without allocating.
func parseInt(text []byte) (int64, bool) {
	const spaces = " \t\n\v\f\r"
	for len(text) > 0 && strings.IndexByte(spaces, text[0]) >= 0 {
		text = text[1:]
	}
	for len(text) > 0 && strings.IndexByte(spaces, text[len(text)-1]) >= 0 {
		text = text[:len(text)-1]
	}
	neg := false
	if len(text) > 0 && (text[0] == '+' || text[0] == '-') {
		neg, text = text[0] == '-', text[1:]
	}
	if len(text) == 0 {
		return 0, false
	}
	var u uint64
	for _, d := range text {
		if d < '0' || d > '9' {
			return 0, false
		}
		if u > (1<<63)/10 { // u*10+9 still fits in a uint64
			return 0, false
		}
		u = u*10 + uint64(d-'0')
		if u > 1<<63 {
			return 0, false
		}
	}
	if neg {
		return -int64(u), true // -(1<<63) wraps to itself: MinInt64
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

// ucaTable holds utf8mb4_unicode_ci's BMP weights that are not the implicit ones: the
// weights of cps[i] are w[off[i]:off[i+1]]. Immutable once decoded.
type ucaTable struct {
	cps []uint16
	off []uint32
	w   []uint16
	num map[uint16]byte // the weight of each of numberChars that weighs one weight
}

func (t *ucaTable) appendWeights(dst []byte, r rune) []byte {
	if r > 0xFFFF {
		return append(dst, 0xFF, 0xFD)
	}
	i, found := slices.BinarySearch(t.cps, uint16(r))
	if !found {
		for _, w := range ucaImplicit(uint32(r)) {
			dst = append(dst, byte(w>>8), byte(w))
		}
		return dst
	}
	for _, w := range t.w[t.off[i]:t.off[i+1]] {
		dst = append(dst, byte(w>>8), byte(w))
	}
	return dst
}

// ucaImplicit is the UCA 4.0.0 implicit weight of a BMP code point, as MariaDB computes it
// for utf8mb4_unicode_ci (rules/internal/gencollation uses the same).
func ucaImplicit(cp uint32) [2]uint16 {
	base := uint32(0xFBC0)
	switch {
	case cp >= 0x3400 && cp <= 0x4DB5:
		base = 0xFB80
	case cp >= 0x4E00 && cp <= 0x9FA5:
		base = 0xFB40
	}
	return [2]uint16{uint16(base + cp>>15), uint16(cp&0x7FFF | 0x8000)}
}

var errUCAData = errors.New("rules: corrupt utf8mb4_unicode_ci table")

// decodeUCA decodes unicodeCIData (its format is documented there).
func decodeUCA(data string) (*ucaTable, error) {
	z, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUCAData, err)
	}
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(z)), 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUCAData, err)
	}
	t := &ucaTable{off: []uint32{0}}
	cp, w := -1, 0
	for len(raw) > 0 {
		d, k := binary.Uvarint(raw)
		if k <= 0 || len(raw) < k+1 || cp+1+int(d) > 0xFFFF {
			return nil, errUCAData
		}
		cp += 1 + int(d)
		n := int(raw[k])
		raw = raw[k+1:]
		for range n {
			z, k := binary.Uvarint(raw)
			if k <= 0 {
				return nil, errUCAData
			}
			raw = raw[k:]
			w += int(int64(z>>1) ^ -int64(z&1))
			if w < 0 || w > 0xFFFF {
				return nil, errUCAData
			}
			t.w = append(t.w, uint16(w))
		}
		t.cps = append(t.cps, uint16(cp))
		t.off = append(t.off, uint32(len(t.w)))
	}
	t.num = map[uint16]byte{}
	for i := range len(numberChars) {
		if w := t.appendWeights(nil, rune(numberChars[i])); len(w) == 2 {
			t.num[uint16(w[0])<<8|uint16(w[1])] = numberChars[i]
		}
	}
	return t, nil
}
