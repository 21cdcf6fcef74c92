package rules_test

import (
	"encoding/hex"
	"testing"

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
		{rules.CollationUnicodeCI, "Abc ", "0e330e4a0e60"},
		{rules.CollationUnicodeCI, "ß", "0fea0fea"},
		{rules.CollationUnicodeCI, "中文", "fb40ce2dfb40e587"},
		{rules.CollationUnicodeCI, "ǅ", "0e6d106a"},
		{rules.CollationUnicodeCI, "😀", "fffd"},
		{rules.CollationUnicodeCI, "a\u00a0 ", "0e33"},
		{rules.CollationUnicodeCI, "\x00", ""}, // ignorable
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
		"utf8mb4_unicode_ci": rules.CollationUnicodeCI,
	} {
		c, err := rules.LookupCollation(name)
		if err != nil || c.Name() != want {
			t.Errorf("LookupCollation(%q) = %s, %v; want %s", name, c.Name(), err, want)
		}
	}
	if (rules.Collation{}).Name() != rules.CollationGeneralCI {
		t.Errorf("zero Collation is %s", rules.Collation{}.Name())
	}
	for _, name := range []string{"utf8mb4_unicode_520_ci", "UTF8MB4_BIN", "latin1_swedish_ci", "utf8mb4_general_ci "} {
		if _, err := rules.LookupCollation(name); err == nil {
			t.Errorf("LookupCollation(%q) accepted", name)
		}
	}
}

// TestCollationNumberLike: text whose key is a whole number's hashes as that integer, so
// every text MariaDB holds equal to it does too, and text that only looks like a number
// without being equal to one hashes as text.
func TestCollationNumberLike(t *testing.T) {
	num := rules.HashKey(rules.IntValue(42), rules.Collation{})
	cases := []struct {
		coll string
		s    string
		num  bool
	}{
		{rules.CollationGeneralCI, "42", true},
		{rules.CollationGeneralCI, " 42  ", true},
		{rules.CollationGeneralCI, "+42", true},
		{rules.CollationGeneralCI, "\t42\n", true},
		{rules.CollationGeneralCI, "４２", false}, // fullwidth digits are other characters here
		{rules.CollationGeneralCI, "42\u00a0", false},
		{rules.CollationGeneralCI, "4 2", false},
		{rules.CollationBin, "42 ", true},
		{rules.CollationBin, "٤٢", false},
		{rules.CollationUnicodeCI, "42", true},
		{rules.CollationUnicodeCI, "４２", true}, // = '42' under utf8mb4_unicode_ci
		{rules.CollationUnicodeCI, "٤٢", true},
		{rules.CollationUnicodeCI, "42\u00a0", true},
		{rules.CollationUnicodeCI, "4\x002", true}, // NUL is ignorable
		{rules.CollationUnicodeCI, "4二", false},
	}
	for _, c := range cases {
		coll := mustCollation(t, c.coll)
		if got := rules.HashKey(rules.StrValue(c.s), coll) == num; got != c.num {
			t.Errorf("%s: %q hashes as the integer 42: %v, want %v", c.coll, c.s, got, c.num)
		}
	}
	if rules.HashKey(rules.StrValue("99999999999999999999"), rules.Collation{}) == rules.HashKey(rules.StrValue("9999999999999999999"), rules.Collation{}) {
		t.Error("an out-of-range number collides with another")
	}
}

// TestUnicodeCITable checks the decoded utf8mb4_unicode_ci table against facts of UCA
// 4.0.0 as MariaDB implements it: letters case-fold, digits of every script weigh as ASCII
// digits, combining marks are ignorable, unlisted ideographs take implicit weights.
func TestUnicodeCITable(t *testing.T) {
	uni := mustCollation(t, rules.CollationUnicodeCI)
	key := func(s string) string { return hex.EncodeToString(uni.AppendKey(nil, s)) }
	for _, pair := range [][2]string{
		{"a", "A"}, {"a", "á"}, {"a", "ａ"}, {"ss", "ß"}, {"7", "７"}, {"7", "٧"}, {"7", "⁷"},
		{"\u00c5", "A\u030a"}, {"\u00c5", "\u212b"}, {"e", "e\u0301"}, {"fi", "ﬁ"}, {"abc", "abc\u00a0"},
	} {
		if key(pair[0]) != key(pair[1]) {
			t.Errorf("%q and %q: keys %s and %s, want equal", pair[0], pair[1], key(pair[0]), key(pair[1]))
		}
	}
	for _, pair := range [][2]string{{"a", "b"}, {"中", "文"}, {"ä", "b"}, {"o", "ø"}} {
		if key(pair[0]) == key(pair[1]) {
			t.Errorf("%q and %q share the key %s", pair[0], pair[1], key(pair[0]))
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

func BenchmarkHashKey(b *testing.B) {
	for _, name := range []string{rules.CollationGeneralCI, rules.CollationBin, rules.CollationUnicodeCI} {
		coll, err := rules.LookupCollation(name)
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range []rules.Value{rules.StrValue("customer-000123-Zürich"), rules.StrValue("1234567")} {
			b.Run(name+"/"+v.Str, func(b *testing.B) {
				for b.Loop() {
					rules.HashKey(v, coll)
				}
			})
		}
	}
}

func BenchmarkLookupUnicodeCI(b *testing.B) {
	for b.Loop() {
		if _, err := rules.LookupCollation(rules.CollationUnicodeCI); err != nil {
			b.Fatal(err)
		}
	}
}
