package rules_test

import (
	"encoding/hex"
	"strings"
	"testing"
	"unicode"

	"github.com/shardproxy/shardproxy/rules"
)

// TestCollationKeyVectors pins AppendKey to MariaDB 10.11 (our image):
// HEX(WEIGHT_STRING(s COLLATE c)) with the trailing space weights removed, since both
// collations are PAD SPACE. integration.TestCollationWeightString compares with the server.
func TestCollationKeyVectors(t *testing.T) {
	cases := []struct {
		coll, s, want string
	}{
		{rules.CollationGeneralCI, "abc", "004100420043"},
		{rules.CollationGeneralCI, "ABC  ", "004100420043"},
		{rules.CollationGeneralCI, " a b ", "0020004100200042"},
		{rules.CollationGeneralCI, "Ünïcode", "0055004e00490043004f00440045"},
		{rules.CollationGeneralCI, "Straße", "005300540052004100530045"},
		{rules.CollationGeneralCI, "µ", "039c"},
		{rules.CollationGeneralCI, "中文", "4e2d6587"},
		{rules.CollationGeneralCI, "😀x", "fffd0058"},
		{rules.CollationGeneralCI, "a\t", "00410009"},
		{rules.CollationGeneralCI, "a\xff", "0041fffd"}, // not UTF-8: U+FFFD
		{rules.CollationGeneralCI, "", ""},
		{rules.CollationBin, "Abc ", "000041000062000063"},
		{rules.CollationBin, "é😀", "0000e901f600"},
		{rules.CollationBin, "  ", ""},
	}
	for _, c := range cases {
		coll := mustCollation(t, c.coll)
		if got := hex.EncodeToString(coll.AppendKey(nil, c.s)); got != c.want {
			t.Errorf("%s key of %q = %s, want %s", c.coll, c.s, got, c.want)
		}
	}
}

func TestLookupCollation(t *testing.T) {
	for name, want := range map[string]string{
		"":                   rules.CollationGeneralCI,
		"utf8mb4_general_ci": rules.CollationGeneralCI,
		"utf8mb4_bin":        rules.CollationBin,
	} {
		c, err := rules.LookupCollation(name)
		if err != nil || c.Name() != want {
			t.Errorf("LookupCollation(%q) = %s, %v; want %s", name, c.Name(), err, want)
		}
	}
	if (rules.Collation{}).Name() != rules.CollationGeneralCI {
		t.Errorf("zero Collation is %s", rules.Collation{}.Name())
	}
	for _, name := range []string{"utf8mb4_unicode_ci", "UTF8MB4_BIN", "latin1_swedish_ci", "utf8mb4_general_ci "} {
		if _, err := rules.LookupCollation(name); err == nil {
			t.Errorf("LookupCollation(%q) accepted", name)
		}
	}
}

// TestCollationNumberLikeUnambiguous: HashKey hashes text that strconv reads as a whole
// number (after strings.TrimSpace) as that integer. That is only sound if no other
// character weighs the same as the characters that decision looks at (digits, signs, and
// what TrimSpace trims): otherwise a text MariaDB holds equal to "42" would hash as text.
func TestCollationNumberLikeUnambiguous(t *testing.T) {
	for _, name := range []string{rules.CollationGeneralCI, rules.CollationBin} {
		coll := mustCollation(t, name)
		byKey := map[string][]rune{}
		for r := rune(0); r <= 0xFFFF; r++ {
			if r >= 0xD800 && r <= 0xDFFF {
				continue // surrogates are not characters
			}
			k := string(coll.AppendKey(nil, "x"+string(r))) // "x" keeps a space's weight
			byKey[k] = append(byKey[k], r)
		}
		for r := rune(0); r <= 0xFFFF; r++ {
			if !strings.ContainsRune("0123456789+-", r) && !unicode.IsSpace(r) {
				continue
			}
			k := string(coll.AppendKey(nil, "x"+string(r)))
			if rs := byKey[k]; len(rs) != 1 {
				t.Errorf("%s: %U weighs as %U", name, r, rs)
			}
		}
	}
}

// TestCollationEqualKeysSameSlot: strings MariaDB holds equal under utf8mb4_general_ci
// land on one slot; under utf8mb4_bin case and accents count, trailing spaces do not.
func TestCollationEqualKeysSameSlot(t *testing.T) {
	gen := rules.HashFunc{N: 1024}
	bin := rules.HashFunc{N: 1024, Collation: mustCollation(t, rules.CollationBin)}
	slot := func(f rules.HashFunc, s string) int {
		n, err := f.Slot(rules.StrValue(s))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, group := range [][]string{
		{"abc", "ABC", "Abc ", "abc   ", "ÀBÇ"},
		{"e", "é", "È", "ê "},
		{"straße", "STRASE", "Straße "},
	} {
		for _, s := range group[1:] {
			if slot(gen, s) != slot(gen, group[0]) {
				t.Errorf("general_ci: %q and %q on different slots", s, group[0])
			}
		}
	}
	if slot(bin, "abc") != slot(bin, "abc  ") {
		t.Error("bin: trailing spaces move a key")
	}
	// 1024 slots: distinct keys colliding would be a 1/1024 chance; these are pinned.
	if slot(bin, "abc") == slot(bin, "ABC") || slot(gen, "abc") == slot(gen, "abd") {
		t.Error("distinct keys share a slot (hash ignores the collation key?)")
	}
}
