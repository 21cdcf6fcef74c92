package wire

import "testing"

func TestQuoteString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "''"},
		{"utf8mb4", "'utf8mb4'"},
		{"it's", `'it\'s'`},
		{`C:\dir`, `'C:\\dir'`},
		{`\'`, `'\\\''`},
		{"a\x00b", `'a\0b'`},
		{"line\nnext\r", `'line\nnext\r'`},
		{"ctrl-z\x1a", `'ctrl-z\Z'`},
		{`double "quotes" stay`, `'double "quotes" stay'`},
		{"ünïcödé", "'ünïcödé'"},
	}
	for _, c := range cases {
		if got := QuoteString(c.in); got != c.want {
			t.Errorf("QuoteString(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestQuoteIdent(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "``"},
		{"orders", "`orders`"},
		{"we`ird", "`we``ird`"},
		{"``", "``````"},
	}
	for _, c := range cases {
		if got := QuoteIdent(c.in); got != c.want {
			t.Errorf("QuoteIdent(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}
