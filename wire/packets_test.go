package wire_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// unhex turns "07 00 00 02" into bytes; spaces are ignored.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// The expected bytes below follow the MySQL client/server protocol documentation
// (OK_Packet, EOF_Packet, ERR_Packet, Protocol::LengthEncodedInteger), not the code.

func TestAppendOK(t *testing.T) {
	cases := []struct {
		name string
		ok   wire.OK
		want string
	}{
		{"empty autocommit", wire.OK{Status: wire.StatusAutocommit}, "00 00 00 0200 0000"},
		{"one row, id 1", wire.OK{AffectedRows: 1, LastInsertID: 1, Status: 0x0003}, "00 01 01 0300 0000"},
		{"250 is one byte", wire.OK{AffectedRows: 250}, "00 fa 00 0000 0000"},
		{"251 needs 0xfc", wire.OK{AffectedRows: 251}, "00 fcfb00 00 0000 0000"},
		{"3-byte and 8-byte ids", wire.OK{AffectedRows: 70000, LastInsertID: 1 << 32, Warnings: 2},
			"00 fd701101 fe0000000001000000 0000 0200"},
		{"info", wire.OK{AffectedRows: 2, Status: 0x0002, Info: "Rows matched: 2"},
			"00 02 00 0200 0000 0f" + hex.EncodeToString([]byte("Rows matched: 2"))},
		{"session state, no info", wire.OK{Status: 0x4002, SessionState: "\x10\x00\x0e\x0aautocommit\x02ON"},
			"00 00 00 0240 0000 00 10000e0a" + hex.EncodeToString([]byte("autocommit")) + "02" + hex.EncodeToString([]byte("ON"))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := wire.AppendOK(nil, c.ok)
			if want := unhex(t, c.want); !bytes.Equal(got, want) {
				t.Fatalf("AppendOK = % x, want % x", got, want)
			}
			back, err := wire.ParseOK(got)
			if err != nil {
				t.Fatalf("ParseOK: %v", err)
			}
			if back != c.ok {
				t.Errorf("round trip = %+v, want %+v", back, c.ok)
			}
			if st, ok := wire.Status(got); !ok || st != c.ok.Status {
				t.Errorf("Status = %#x, %v; want %#x, true", st, ok, c.ok.Status)
			}
		})
	}
}

func TestAppendAppends(t *testing.T) {
	prefix := []byte{0xaa, 0xbb}
	got := wire.AppendOK(append([]byte(nil), prefix...), wire.OK{})
	if !bytes.Equal(got, unhex(t, "aabb 00 00 00 0000 0000")) {
		t.Errorf("AppendOK on a prefix = % x", got)
	}
	got = wire.AppendEOF(append([]byte(nil), prefix...), 1, 2)
	if !bytes.Equal(got, unhex(t, "aabb fe 0100 0200")) {
		t.Errorf("AppendEOF on a prefix = % x", got)
	}
}

func TestParseOK(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    wire.OK
		wantErr bool
	}{
		{"minimal", "00 00 00 0200 0000", wire.OK{Status: 2}, false},
		{"OK that ends a result set (0xfe header)", "fe 00 00 2200 0000 00", wire.OK{Status: 0x22}, false},
		{"non-minimal lenenc", "00 fc0100 fd020000 0100 0500 02 6869", wire.OK{AffectedRows: 1, LastInsertID: 2, Status: 1, Warnings: 5, Info: "hi"}, false},
		{"info longer than the packet", "00 00 00 0200 0000 03 6869", wire.OK{}, true},
		{"info length truncated", "00 00 00 0200 0000 fc01", wire.OK{}, true},
		{"empty", "", wire.OK{}, true},
		{"header only", "00", wire.OK{}, true},
		{"truncated affected rows", "00 fc01", wire.OK{}, true},
		{"truncated last insert id", "00 00 fe01020304", wire.OK{}, true},
		{"no status", "00 00 00", wire.OK{}, true},
		{"half a status", "00 00 00 02", wire.OK{}, true},
		{"no warnings", "00 00 00 0200 00", wire.OK{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := wire.ParseOK(unhex(t, c.in))
			if c.wantErr {
				if err != wire.ErrMalformed {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got != c.want {
				t.Errorf("ParseOK = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestAppendEOF(t *testing.T) {
	got := wire.AppendEOF(nil, 0, wire.StatusAutocommit)
	if want := unhex(t, "fe 0000 0200"); !bytes.Equal(got, want) {
		t.Errorf("AppendEOF = % x, want % x", got, want)
	}
	got = wire.AppendEOF(nil, 0x0102, wire.StatusInTrans|wire.StatusMoreResults)
	if want := unhex(t, "fe 0201 0900"); !bytes.Equal(got, want) {
		t.Errorf("AppendEOF = % x, want % x", got, want)
	}
}

func TestAppendErr(t *testing.T) {
	cases := []struct {
		name string
		err  *sqlerr.Error
		want string
	}{
		{"access denied", &sqlerr.Error{Code: 1045, State: "28000", Message: "Access denied"},
			"ff 1504 23 3238303030" + hex.EncodeToString([]byte("Access denied"))},
		{"unknown command", &sqlerr.Error{Code: 1047, State: "08S01", Message: ""}, "ff 1704 23 3038533031"},
		{"bad state becomes HY000", &sqlerr.Error{Code: 1105, State: "XX", Message: "m"}, "ff 5104 23 4859303030 6d"},
		{"empty state becomes HY000", &sqlerr.Error{Code: 1105, Message: "m"}, "ff 5104 23 4859303030 6d"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := wire.AppendErr(nil, c.err)
			if want := unhex(t, c.want); !bytes.Equal(got, want) {
				t.Fatalf("AppendErr = % x, want % x", got, want)
			}
			if !wire.IsErr(got) {
				t.Error("IsErr = false")
			}
			back := wire.ParseErr(got)
			wantState := c.err.State
			if len(wantState) != 5 {
				wantState = "HY000"
			}
			if back.Code != c.err.Code || back.State != wantState || back.Message != c.err.Message {
				t.Errorf("ParseErr = %+v", back)
			}
		})
	}
}

func TestParseErr(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want sqlerr.Error
	}{
		{"with state", "ff 7a04 23 3432533032 " + hex.EncodeToString([]byte("Table 't' doesn't exist")),
			sqlerr.Error{Code: 1146, State: "42S02", Message: "Table 't' doesn't exist"}},
		{"no state marker (pre-4.1, or handshake errors)", "ff 1004 " + hex.EncodeToString([]byte("Too many connections")),
			sqlerr.Error{Code: 1040, State: "HY000", Message: "Too many connections"}},
		{"marker but short", "ff 1004 23 3432", sqlerr.Error{Code: 1040, State: "HY000", Message: "#42"}},
		{"code only", "ff 1004", sqlerr.Error{Code: 1040, State: "HY000", Message: ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := wire.ParseErr(unhex(t, c.in))
			if *got != c.want {
				t.Errorf("ParseErr = %+v, want %+v", *got, c.want)
			}
		})
	}
	for _, short := range []string{"", "ff", "ff 10"} {
		got := wire.ParseErr(unhex(t, short))
		if got.Code != sqlerr.ErUnknownError {
			t.Errorf("ParseErr(% x) code = %d, want 1105", short, got.Code)
		}
	}
}

func TestIsEOFIsErr(t *testing.T) {
	cases := []struct {
		in         string
		eof, isErr bool
	}{
		{"fe 0000 0200", true, false},
		{"fe", true, false},
		{"fe 0000 0200 000000", true, false},    // 8 bytes: still EOF
		{"fe 0000 0200 00000000", false, false}, // 9 bytes: a row (lenenc 8-byte length)
		{"00 00 00 0200 0000", false, false},    // OK
		{"ff 1504 23 3238303030", false, true},  // ERR
		{"", false, false},
	}
	for _, c := range cases {
		p := unhex(t, c.in)
		if got := wire.IsEOF(p); got != c.eof {
			t.Errorf("IsEOF(% x) = %v, want %v", p, got, c.eof)
		}
		if got := wire.IsErr(p); got != c.isErr {
			t.Errorf("IsErr(% x) = %v, want %v", p, got, c.isErr)
		}
	}
}

func TestStatus(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		status uint16
		ok     bool
	}{
		{"OK", "00 00 00 0300 0000", 0x0003, true},
		{"OK with lenenc ints", "00 fcfb00 fd000001 2100 0100", 0x0021, true},
		{"EOF", "fe 0000 0a00", 0x000a, true},
		{"pre-4.1 EOF", "fe", 0, false},
		{"short EOF", "fe 0000 02", 0, false},
		{"ERR", "ff 1504 23 3238303030", 0, false},
		{"row", "03 616263", 0, false},
		{"truncated OK", "00 00 00 02", 0, false},
		{"empty", "", 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, ok := wire.Status(unhex(t, c.in))
			if st != c.status || ok != c.ok {
				t.Errorf("Status = %#x, %v; want %#x, %v", st, ok, c.status, c.ok)
			}
		})
	}
}

func TestSetStatus(t *testing.T) {
	cases := []struct {
		name       string
		in         string
		clear, set uint16
		want       string
	}{
		{"OK: add more results", "00 00 00 0200 0000", 0, wire.StatusMoreResults, "00 00 00 0a00 0000"},
		{"OK: clear in-trans, keep autocommit", "00 00 00 0300 0100", wire.StatusInTrans, 0, "00 00 00 0200 0100"},
		{"OK after lenenc ints", "00 fcfb00 fd000001 0200 0000 6869", 0, 0x2000, "00 fcfb00 fd000001 0220 0000 6869"},
		{"EOF: replace", "fe 0500 0b00", 0xffff, wire.StatusAutocommit, "fe 0500 0200"},
		{"ERR untouched", "ff 1504 23 3238303030", 0xffff, 0xffff, "ff 1504 23 3238303030"},
		{"short EOF untouched", "fe 0000 02", 0, 8, "fe 0000 02"},
		{"truncated OK untouched", "00 fc01", 0, 8, "00 fc01"},
		{"empty", "", 0, 8, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := unhex(t, c.in)
			wire.SetStatus(p, c.clear, c.set)
			if want := unhex(t, c.want); !bytes.Equal(p, want) {
				t.Errorf("SetStatus → % x, want % x", p, want)
			}
		})
	}
}

func TestOKStatusOffset(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"00 00 00 0200 0000", 3},
		{"00 fcfb00 00 0200 0000", 5},
		{"00 fe0100000000000000 fd010000 0200 0000", 14},
		{"00 00 00 0200", -1},
		{"00 fc", -1},
		{"00", -1},
	}
	for _, c := range cases {
		if got := wire.OKStatusOffset(unhex(t, c.in)); got != c.want {
			t.Errorf("OKStatusOffset(%s) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestOKStatusOffsetEmpty(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("wire.OKStatusOffset(nil) panics (%v); the contract is \"or -1\"", r)
		}
	}()
	if got := wire.OKStatusOffset(nil); got != -1 {
		t.Errorf("OKStatusOffset(nil) = %d, want -1", got)
	}
}

func TestLenencInt(t *testing.T) {
	cases := []struct {
		v   uint64
		enc string
	}{
		{0, "00"},
		{1, "01"},
		{250, "fa"},
		{251, "fc fb00"},
		{0xffff, "fc ffff"},
		{0x10000, "fd 000001"},
		{0xffffff, "fd ffffff"},
		{0x1000000, "fe 0000000100000000"},
		{1<<64 - 1, "fe ffffffffffffffff"},
	}
	for _, c := range cases {
		enc := unhex(t, c.enc)
		if got := wire.AppendLenencInt(nil, c.v); !bytes.Equal(got, enc) {
			t.Errorf("AppendLenencInt(%d) = % x, want % x", c.v, got, enc)
		}
		// Trailing bytes are not consumed.
		v, n := wire.LenencInt(append(append([]byte(nil), enc...), 0x77, 0x88))
		if v != c.v || n != len(enc) {
			t.Errorf("LenencInt(% x) = %d, %d; want %d, %d", enc, v, n, c.v, len(enc))
		}
	}
}

func TestLenencIntShortAndNull(t *testing.T) {
	cases := []struct {
		in   string
		v    uint64
		n    int
		name string
	}{
		{"", 0, 0, "empty"},
		{"fb", 0, 1, "NULL marker"},
		{"fc", 0, 0, "fc without bytes"},
		{"fc 01", 0, 0, "fc with one byte"},
		{"fd 0102", 0, 0, "fd with two bytes"},
		{"fe 01020304050607", 0, 0, "fe with seven bytes"},
	}
	for _, c := range cases {
		v, n := wire.LenencInt(unhex(t, c.in))
		if v != c.v || n != c.n {
			t.Errorf("%s: LenencInt = %d, %d; want %d, %d", c.name, v, n, c.v, c.n)
		}
	}
}

func TestLenencString(t *testing.T) {
	long := strings.Repeat("x", 251)
	cases := []struct {
		name string
		s    string
		enc  string
	}{
		{"empty", "", "00"},
		{"abc", "abc", "03 616263"},
		{"binary", "\x00\xfb\xff", "03 00fbff"},
		{"251 bytes", long, "fc fb00" + hex.EncodeToString([]byte(long))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			enc := unhex(t, c.enc)
			if got := wire.AppendLenencString(nil, c.s); !bytes.Equal(got, enc) {
				t.Fatalf("AppendLenencString = % x, want % x", got, enc)
			}
			s, null, n := wire.LenencString(append(enc, 0x01))
			if string(s) != c.s || null || n != len(enc) {
				t.Errorf("LenencString = %q, %v, %d; want %q, false, %d", s, null, n, c.s, len(enc))
			}
		})
	}
	if s, null, n := wire.LenencString([]byte{0xfb, 0x01}); s != nil || !null || n != 1 {
		t.Errorf("LenencString(NULL) = %q, %v, %d", s, null, n)
	}
	for _, bad := range []string{"", "05 6162", "fc 0500 61", "fc"} {
		if _, _, n := wire.LenencString(unhex(t, bad)); n != 0 {
			t.Errorf("LenencString(%s): n = %d, want 0", bad, n)
		}
	}
}

// mariadbOK is an OK packet as MariaDB 10.11 sent it to a connection with the backend
// capabilities (no CLIENT_SESSION_TRACK) or with CLIENT_SESSION_TRACK: the info is a
// length-encoded string either way.
func mariadbOK(status string, info string, state string) string {
	p := "00 02 00" + status + "0000"
	if info != "" || state != "" {
		p += hex.EncodeToString(wire.AppendLenencString(nil, info))
	}
	return p + state
}

// TestParseOKInfo: the info is decoded from its length-encoded string, whatever its
// length; the length byte of a 48-57 byte info is an ASCII digit, which a reader of the raw
// bytes took for the first number of "Rows matched: M  Changed: C  Warnings: W". Re-encoded,
// the packet is the one the server sent.
func TestParseOKInfo(t *testing.T) {
	// The session-state info MariaDB sent for SET autocommit = 1 with CLIENT_SESSION_TRACK:
	// SESSION_TRACK_SYSTEM_VARIABLES (0), "autocommit" = "ON".
	state := "10 00 0e 0a" + hex.EncodeToString([]byte("autocommit")) + "02" + hex.EncodeToString([]byte("ON"))
	for _, matched := range []string{"3", "300", "3000000", "300000000000", "3000000000000"} { // 46, 48, 52, 57, 58 bytes
		info := "Rows matched: " + matched + "  Changed: 2000000  Warnings: 0"
		for _, c := range []struct {
			name, status, state string
		}{
			{"no state change (the same with and without session tracking)", "2200", ""},
			{"with session tracking and a state change", "2240", state},
		} {
			t.Run(fmt.Sprintf("%d bytes %s", len(info), c.name), func(t *testing.T) {
				p := unhex(t, mariadbOK(c.status, info, c.state))
				ok, err := wire.ParseOK(p)
				if err != nil {
					t.Fatalf("ParseOK(% x): %v", p, err)
				}
				if want := string(unhex(t, c.state)); ok.Info != info || ok.SessionState != want {
					t.Errorf("Info %q, SessionState %q; want %q, %q", ok.Info, ok.SessionState, info, want)
				}
				if back := wire.AppendOK(nil, ok); !bytes.Equal(back, p) {
					t.Errorf("re-encoded:\n% x\nwant\n% x", back, p)
				}
			})
		}
	}
	// A state change with no message: an empty info, then the state.
	p := unhex(t, mariadbOK("0240", "", state))
	ok, err := wire.ParseOK(p)
	if err != nil || ok.Info != "" || ok.SessionState != string(unhex(t, state)) {
		t.Fatalf("ParseOK(% x) = %+v, %v", p, ok, err)
	}
	if back := wire.AppendOK(nil, ok); !bytes.Equal(back, p) {
		t.Errorf("re-encoded:\n% x\nwant\n% x", back, p)
	}
}
