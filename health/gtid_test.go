package health

import "testing"

func TestGTIDPos(t *testing.T) {
	for _, tc := range []struct {
		p, q     string
		contains bool
	}{
		{"0-1-10", "0-1-9", true},
		{"0-1-10", "0-1-10", true},
		{"0-1-9", "0-1-10", false},
		{"0-2-11", "0-1-10", true},
		{"", "", true},
		{"0-1-5", "", true},
		{"", "0-1-5", false},
		{"0-1-10,1-3-4", "1-3-4", true},
		{"0-1-10", "0-1-3,1-3-4", false},
		{" 0-1-10,\n1-3-5 ", "1-3-4,0-1-10", true},
	} {
		p, err := ParseGTIDPos(tc.p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := ParseGTIDPos(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Contains(q); got != tc.contains {
			t.Errorf("%q contains %q: %v, want %v", tc.p, tc.q, got, tc.contains)
		}
	}
	for _, bad := range []string{"0-1", "a-1-2", "0-1-2-3", "0-1-2,0-1-3", "-1-1-1", "0-1-18446744073709551616"} {
		if _, err := ParseGTIDPos(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	p, _ := ParseGTIDPos("1-3-5,0-1-10")
	if p.String() != "0-1-10,1-3-5" {
		t.Errorf("String %q", p.String())
	}
}
