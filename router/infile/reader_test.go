package infile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// chunks serves s in pieces of n bytes (the last one shorter), then the end.
func chunks(s string, n int) Source {
	return func() ([]byte, error) {
		if s == "" {
			return nil, nil
		}
		k := min(n, len(s))
		c := []byte(s[:k])
		s = s[k:]
		return c, nil
	}
}

type want struct {
	raw, key string
	null     bool
	missing  bool
}

func readAll(t *testing.T, f Format, file string, ignore uint64, fields, key, chunk int) []want {
	t.Helper()
	r := NewReader(f, chunks(file, chunk), 1<<20)
	if err := r.SkipLines(ignore); err != nil {
		t.Fatal(err)
	}
	var out []want
	for {
		row, ok, err := r.Next(fields, key)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, want{string(row.Raw), string(row.Key), row.KeyNull, row.KeyMissing})
	}
}

func TestReader(t *testing.T) {
	csv := Format{FieldTerm: ",", Enclosed: `"`, Escaped: `\`, LineTerm: "\n"}
	for _, tc := range []struct {
		name   string
		f      Format
		file   string
		ignore uint64
		fields int
		key    int
		want   []want
	}{
		{"tabs", Default, "1\ta\n2\tb\n", 0, 2, 0, []want{{"1\ta\n", "1", false, false}, {"2\tb\n", "2", false, false}}},
		{"no final terminator", Default, "1\ta\n2\tb", 0, 2, 1, []want{{"1\ta\n", "a", false, false}, {"2\tb", "b", false, false}}},
		{"escapes", Default, "a\\tb\\\\\\nc\tk\\0\\Z\n", 0, 2, 0, []want{{"a\\tb\\\\\\nc\tk\\0\\Z\n", "a\tb\\\nc", false, false}}},
		{"escaped terminators", Default, "x\\\ty\tz\\\nw\n", 0, 2, 1, []want{{"x\\\ty\tz\\\nw\n", "z\nw", false, false}}},
		{"null escape", Default, "\\N\t1\n", 0, 2, 0, []want{{"\\N\t1\n", "N", true, false}}},
		{"not null: two chars", Default, "\\Nx\t1\n", 0, 2, 0, []want{{"\\Nx\t1\n", "Nx", false, false}}},
		{"word NULL needs an enclosure set", Default, "NULL\t1\n", 0, 2, 0, []want{{"NULL\t1\n", "NULL", false, false}}},
		{"word NULL", csv, "NULL,1\n\"NULL\",2\n", 0, 2, 0, []want{{"NULL,1\n", "NULL", true, false}, {"\"NULL\",2\n", "NULL", false, false}}},
		{"enclosed", csv, "\"a,b\",\"c\"\"d\"\n", 0, 2, 1, []want{{"\"a,b\",\"c\"\"d\"\n", "c\"d", false, false}}},
		{"enclosed newline", csv, "\"a\nb\",1\n2,3\n", 0, 2, 0, []want{{"\"a\nb\",1\n", "a\nb", false, false}, {"2,3\n", "2", false, false}}},
		{"quote inside unenclosed", csv, "a\"b,1\n", 0, 2, 0, []want{{"a\"b,1\n", "a\"b", false, false}}},
		{"quote not followed by a terminator", csv, "\"a\"b\",1\n", 0, 2, 0, []want{{"\"a\"b\",1\n", "a\"b", false, false}}},
		{"unclosed at end", csv, "1,\"abc", 0, 2, 1, []want{{"1,\"abc", "\"abc", false, false}}},
		{"escape is the enclosure", Format{FieldTerm: ",", Enclosed: `"`, Escaped: `"`, LineTerm: "\n"}, "\"a\"\"b\",1\n", 0, 2, 0, []want{{"\"a\"\"b\",1\n", "a\"b", false, false}}},
		{"crlf", Format{FieldTerm: ",", Escaped: `\`, LineTerm: "\r\n"}, "1,a\r\n2,b\rc\r\n", 0, 2, 1, []want{{"1,a\r\n", "a", false, false}, {"2,b\rc\r\n", "b\rc", false, false}}},
		{"long terminators", Format{FieldTerm: "||", Escaped: `\`, LineTerm: "##\n"}, "1|2||x#\n##\n3||y##\n", 0, 2, 0, []want{{"1|2||x#\n##\n", "1|2", false, false}, {"3||y##\n", "3", false, false}}},
		{"too few fields", csv, "1\n2,b\n", 0, 3, 1, []want{{"1\n", "", false, true}, {"2,b\n", "b", false, false}}},
		{"too many fields", csv, "1,a,\"x\ny\"\n", 0, 2, 0, []want{{"1,a,\"x\n", "1", false, false}, {"y\"\n", "y\"", false, false}}},
		{"empty line", csv, "\n1,a\n", 0, 2, 0, []want{{"\n", "", false, false}, {"1,a\n", "1", false, false}}},
		{"ignored lines are lines, not rows", csv, "id,name\n\"x\ny\",z\n1,a\n", 2, 2, 0, []want{{"y\",z\n", "y\"", false, false}, {"1,a\n", "1", false, false}}},
		{"ignore lines past the end", csv, "id\n", 5, 2, 0, nil},
		{"ignore lines honour escapes", Default, "h\\\nh\n1\ta\n", 1, 2, 0, []want{{"1\ta\n", "1", false, false}}},
		{"line prefix", Format{FieldTerm: ",", Escaped: `\`, LineStart: "xx", LineTerm: "\n"}, "junk\nxx1,a\nyyxx2,b\nnone", 0, 2, 0,
			[]want{{"junk\nxx1,a\n", "1", false, false}, {"yyxx2,b\n", "2", false, false}}},
		{"multi-byte", csv, "\"é,ü\",日本\n€,x\n", 0, 2, 1, []want{{"\"é,ü\",日本\n", "日本", false, false}, {"€,x\n", "x", false, false}}},
		{"no escape", Format{FieldTerm: ",", LineTerm: "\n"}, "a\\,b\n", 0, 2, 0, []want{{"a\\,b\n", "a\\", false, false}}},
		{"empty file", csv, "", 0, 2, 0, nil},
	} {
		for _, chunk := range []int{1, 2, 3, 1 << 10} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, chunk), func(t *testing.T) {
				if err := tc.f.Check(); err != nil {
					t.Fatal(err)
				}
				got := readAll(t, tc.f, tc.file, tc.ignore, tc.fields, tc.key, chunk)
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("got  %+v\nwant %+v", got, tc.want)
				}
			})
		}
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		f   Format
		bad string
	}{
		{Default, ""},
		{Format{FieldTerm: "é", LineTerm: "\n"}, "byte above"},
		{Format{FieldTerm: ",", Enclosed: "ab", LineTerm: "\n"}, "longer than one"},
		{Format{LineTerm: "\n"}, "fixed-width"},
		{Format{FieldTerm: ",", LineTerm: ""}, "empty LINES"},
		{Format{FieldTerm: ",", LineTerm: ","}, "equal"},
	} {
		err := tc.f.Check()
		if tc.bad == "" && err != nil || tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)) {
			t.Errorf("%+v: %v, want %q", tc.f, err, tc.bad)
		}
	}
}

func TestRowTooLong(t *testing.T) {
	r := NewReader(Default, chunks("1\tshort\n2\t"+strings.Repeat("x", 100)+"\n3\tz\n", 7), 50)
	if _, ok, err := r.Next(2, 0); !ok || err != nil {
		t.Fatalf("first row: %v %v", ok, err)
	}
	if _, _, err := r.Next(2, 0); !errors.Is(err, ErrRowTooLong) || r.Rows() != 1 {
		t.Fatalf("long row: %v after %d rows, want ErrRowTooLong after 1", err, r.Rows())
	}
	if r.Done() {
		t.Fatal("the source must be left for the caller to drain")
	}
}

func TestSourceError(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	r := NewReader(Default, func() ([]byte, error) {
		if n++; n == 1 {
			return []byte("1\ta\n2\t"), nil
		}
		return nil, boom
	}, 1<<10)
	if _, ok, err := r.Next(2, 0); !ok || err != nil {
		t.Fatalf("first row: %v %v", ok, err)
	}
	if _, _, err := r.Next(2, 0); !errors.Is(err, boom) || !r.Done() {
		t.Fatalf("got %v, want the source's error", err)
	}
}

// FuzzReader: rows read from a file, each read again alone, come back the same (the
// property that lets the router send every shard only its rows), and together they are
// the file after its ignored lines.
func FuzzReader(f *testing.F) {
	f.Add([]byte("1,\"a\nb\",c\r\n\\N,\"x\"\"y\"\nNULL\n"), uint8(3), uint8(1), uint8(0), uint8(0))
	f.Add([]byte("xx1,a\njunkxx2\\\n,b"), uint8(2), uint8(0), uint8(1), uint8(1))
	formats := []Format{
		{FieldTerm: ",", Enclosed: `"`, Escaped: `\`, LineTerm: "\n"},
		{FieldTerm: ",", Escaped: `\`, LineStart: "xx", LineTerm: "\n"},
		{FieldTerm: ";;", Enclosed: `'`, Escaped: `'`, LineTerm: "\r\n"},
		Default,
	}
	f.Fuzz(func(t *testing.T, file []byte, fields, key, format, chunk uint8) {
		fm := formats[int(format)%len(formats)]
		nf := int(fields%5) + 1
		k := int(key) % nf
		r := NewReader(fm, chunks(string(file), int(chunk%9)+1), 1<<20)
		var all []byte
		for {
			row, ok, err := r.Next(nf, k)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			all = append(all, row.Raw...)
			alone := NewReader(fm, chunks(string(row.Raw), 4), 1<<20)
			again, ok, err := alone.Next(nf, k)
			if err != nil || !ok || !bytes.Equal(again.Raw, row.Raw) || !bytes.Equal(again.Key, row.Key) ||
				again.KeyNull != row.KeyNull || again.KeyMissing != row.KeyMissing {
				t.Fatalf("row %q read alone: %q %v %v", row.Raw, again.Raw, ok, err)
			}
			if _, more, _ := alone.Next(nf, k); more {
				t.Fatalf("row %q read alone gives two rows", row.Raw)
			}
		}
		if !bytes.HasPrefix(file, all) {
			t.Fatalf("rows %q are not the file %q", all, file)
		}
	})
}
