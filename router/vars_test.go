package router

import (
	"slices"
	"testing"
)

func TestLiteral(t *testing.T) {
	cases := []struct{ in, want string }{
		{"1", "1"},
		{"0", "0"},
		{"-5", "-5"},
		{"28800", "28800"},
		{"10.000000", "10.000000"},
		{"-0.5", "-0.5"},
		{"18446744073709551615", "18446744073709551615"},
		{"ON", "'ON'"},
		{"", "''"},
		{"utf8mb4_general_ci", "'utf8mb4_general_ci'"},
		{"STRICT_TRANS_TABLES,NO_ZERO_DATE", "'STRICT_TRANS_TABLES,NO_ZERO_DATE'"},
		{"+00:00", "'+00:00'"},
		{"1e5", "'1e5'"},
		{".5", "'.5'"},
		{"5.", "'5.'"},
		{"-", "'-'"},
		{"1 ", "'1 '"},
		{"0x10", "'0x10'"},
		{"REPEATABLE-READ", "'REPEATABLE-READ'"},
	}
	for _, c := range cases {
		if got := literal(c.in); got != c.want {
			t.Errorf("literal(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestVarOrder(t *testing.T) {
	names := []string{
		"sql_mode", "collation_connection", "autocommit", "character_set_results",
		"character_set_client", "time_zone", "character_set_connection",
	}
	slices.SortFunc(names, varOrder)
	want := []string{
		"character_set_client", "character_set_connection", "character_set_results",
		"collation_connection",
		"autocommit", "sql_mode", "time_zone",
	}
	if !slices.Equal(names, want) {
		t.Errorf("sorted %q\nwant %q", names, want)
	}
	if varOrder("a", "a") != 0 {
		t.Error("varOrder(a, a) != 0")
	}
}

func TestLikeRegexp(t *testing.T) {
	cases := []struct {
		pat   string
		match []string
		no    []string
	}{
		{"%", []string{"", "shop", "a\nb"}, nil},
		{"shop", []string{"shop", "SHOP", "Shop"}, []string{"shops", "shop_0", "xshop"}},
		{"sh_p", []string{"shop", "ship", "SH P"}, []string{"shp", "shoop"}},
		{"s%", []string{"s", "shop", "sys"}, []string{"blog", "xs"}},
		{"%_0", []string{"shop_0", "a0"}, []string{"0", "shop_1"}},
		{`shop\_0`, []string{"shop_0"}, []string{"shopx0"}},
		{`100\%`, []string{"100%"}, []string{"1000", "100"}},
		{"a.b", []string{"a.b"}, []string{"axb"}},
		{"a+b*(c)[d]{e}|^$", []string{"a+b*(c)[d]{e}|^$"}, []string{"aab"}},
		{"ünï%", []string{"ünïcode", "ÜNÏ"}, []string{"uni"}},
		{"", []string{""}, []string{"a"}},
	}
	for _, c := range cases {
		re := likeRegexp(c.pat)
		for _, s := range c.match {
			if !re.MatchString(s) {
				t.Errorf("%q LIKE %q = false, want true", s, c.pat)
			}
		}
		for _, s := range c.no {
			if re.MatchString(s) {
				t.Errorf("%q LIKE %q = true, want false", s, c.pat)
			}
		}
	}
}

// TestLikeRegexpTrailingEscape: MySQL treats an escape character at the very end of a LIKE
// pattern as a literal (my_wildcmp: the escape applies only when a character follows), so
// 'ab\' matches the string `ab\` and not `ab`.
func TestLikeRegexpTrailingEscape(t *testing.T) {
	re := likeRegexp(`ab\`)
	if re.MatchString("ab") || !re.MatchString(`ab\`) {
		t.Errorf("likeRegexp(`ab\\`) = %s: must match `ab\\` and not `ab` (a trailing escape character is literal)", re)
	}
}
