package wire_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// FuzzReadPacket feeds arbitrary bytes to ReadPacket. It must never panic, and every packet
// it accepts, framed again by WritePacket with the same sequence numbers, must give back
// exactly the bytes it consumed.
func FuzzReadPacket(f *testing.F) {
	f.Add(frame(0, []byte{0x03, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1'}), 0)
	f.Add(append(frame(0, nil), frame(1, []byte{1})...), 0)
	f.Add(frame(1, []byte("bad seq")), 0)
	f.Add([]byte{0xff, 0xff, 0xff, 0x00, 1, 2, 3}, 0)
	f.Add([]byte{0x10, 0x00}, 0)
	f.Add(frame(0, bytes.Repeat([]byte{9}, 5000)), 4096)
	f.Add(frame(0, bytes.Repeat([]byte{9}, 5000)), 5000)
	f.Fuzz(func(t *testing.T, in []byte, maxPacket int) {
		if maxPacket <= 0 || maxPacket > 1<<20 {
			maxPacket = 1 << 20 // keep allocations bounded: a header may claim 16 MiB
		}
		c := wire.NewConn(newFake(in), 4096)
		c.MaxPacket = maxPacket
		var reframed []byte
		for {
			p, err := c.ReadPacket()
			if err != nil {
				break
			}
			if len(p) > maxPacket {
				t.Fatalf("accepted %d bytes with MaxPacket %d", len(p), maxPacket)
			}
			reframed = append(reframed, frame(c.Seq()-1, p)...)
		}
		if !bytes.HasPrefix(in, reframed) {
			t.Fatalf("re-framed packets are not a prefix of the input:\n% x\n% x", reframed, in)
		}
	})
}

// FuzzParseOK feeds arbitrary payloads to the packet decoders. None may panic; a payload
// that ParseOK accepts as an OK (0x00) packet must report the same status through Status,
// SetStatus must change only the status bytes, and AppendOK must give back the same bytes
// from the status on, but for the lengths it writes in their shortest form (see
// sameAfterInfoLength).
func FuzzParseOK(f *testing.F) {
	f.Add([]byte{0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00})
	f.Add([]byte{0x00, 0xfc, 0xfb, 0x00, 0xfd, 0x01, 0x02, 0x03, 0x22, 0x00, 0x01, 0x00, 'h', 'i'})
	f.Add([]byte{0x00, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0x00, 0x00, 0x00})
	f.Add([]byte{0xfe, 0x00, 0x00, 0x02, 0x00})
	f.Add([]byte{0xff, 0x15, 0x04, '#', '2', '8', '0', '0', '0', 'x'})
	f.Add([]byte{0x00, 0xfc})
	f.Add([]byte{0x00})
	f.Add(append([]byte{0x00, 0x02, 0x00, 0x22, 0x00, 0x00, 0x00, 0x30}, "Rows matched: 300  Changed: 2000000  Warnings: 0"...))
	f.Add([]byte{0x00, 0x00, 0x00, 0x02, 0x40, 0x00, 0x00, 0x00, 0x05, 0x00, 0x03, 0x01, 'a', 0x00})
	f.Add([]byte{0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 'h', 'i'})
	f.Fuzz(func(t *testing.T, p []byte) {
		ok, err := wire.ParseOK(p)
		_ = wire.ParseErr(p)
		_, _ = wire.LenencInt(p)
		_, _, _ = wire.LenencString(p)
		_, _ = wire.ParseColumnName(p)
		_ = wire.IsEOF(p)
		_ = wire.IsErr(p)
		if len(p) > 0 { // OKStatusOffset(empty) panics: see TestOKStatusOffsetEmpty
			_ = wire.OKStatusOffset(p)
		}
		st, hasStatus := wire.Status(p)

		q := bytes.Clone(p)
		wire.SetStatus(q, 0xffff, 0x1234)
		st2, has2 := wire.Status(q)
		if has2 != hasStatus || (hasStatus && st2 != 0x1234) {
			t.Fatalf("after SetStatus: Status = %#x, %v (before %#x, %v)", st2, has2, st, hasStatus)
		}
		if diff := countDiff(p, q); diff > 2 || (!hasStatus && diff != 0) {
			t.Fatalf("SetStatus changed %d bytes: % x → % x", diff, p, q)
		}

		if err != nil || len(p) == 0 || p[0] != wire.OKHeader {
			return
		}
		if !hasStatus || st != ok.Status {
			t.Fatalf("ParseOK status %#x, Status() = %#x, %v", ok.Status, st, hasStatus)
		}
		enc := wire.AppendOK(nil, ok)
		back, err := wire.ParseOK(enc)
		if err != nil || back != ok {
			t.Fatalf("re-encoded OK parses as %+v, %v; want %+v", back, err, ok)
		}
		tail, encTail := p[wire.OKStatusOffset(p):], enc[wire.OKStatusOffset(enc):]
		if !bytes.Equal(tail, encTail) && !sameAfterInfoLength(tail, encTail) {
			t.Fatalf("re-encoded OK ends % x, the packet % x", encTail, tail)
		}
	})
}

// sameAfterInfoLength reports whether two OK packets, from their status flags on, differ
// only in how the info's length is written (AppendOK writes the shortest form, and leaves
// out an empty info with nothing after it).
func sameAfterInfoLength(p, q []byte) bool {
	if !bytes.Equal(p[:4], q[:4]) {
		return false
	}
	_, n := wire.LenencInt(p[4:])
	if len(q) == 4 {
		return len(p) == 4+n
	}
	_, m := wire.LenencInt(q[4:])
	return bytes.Equal(p[4+n:], q[4+m:])
}

func countDiff(a, b []byte) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// FuzzRoundTrip encodes arbitrary values with the wire encoders and decodes them back:
// length-encoded strings and integers, a text row (NULLs included), a column definition's
// name, and an ERR packet must all survive the round trip, and every decoder must stop
// inside the bytes it was given.
func FuzzRoundTrip(f *testing.F) {
	f.Add("name", "value", uint64(0), uint16(1146), "42S02", "Table 'x' doesn't exist", uint8(0))
	f.Add("", "", uint64(250), uint16(1064), "", "", uint8(3))
	f.Add("名前", string(bytes.Repeat([]byte{0xfb}, 300)), uint64(1<<16), uint16(3024), "HY000", "timeout", uint8(1))
	f.Add("x\x00y", string(bytes.Repeat([]byte("a"), 70000)), uint64(1<<24), uint16(0), "#####", "\xff\xfe", uint8(2))
	f.Add("n", "v", uint64(1<<63), uint16(65535), "ab", "m", uint8(7))
	f.Fuzz(func(t *testing.T, name, value string, n uint64, code uint16, state, msg string, nulls uint8) {
		if v, used := wire.LenencInt(wire.AppendLenencInt(nil, n)); v != n || used != len(wire.AppendLenencInt(nil, n)) {
			t.Fatalf("lenenc int %d decodes as %d (%d bytes)", n, v, used)
		}
		enc := wire.AppendLenencString(nil, value)
		s, isNull, used := wire.LenencString(enc)
		if string(s) != value || isNull || used != len(enc) {
			t.Fatalf("lenenc string of %d bytes decodes as %d bytes, null %v, used %d of %d", len(value), len(s), isNull, used, len(enc))
		}
		if s, _, used := wire.LenencString(enc[:len(enc)-1]); used != 0 || s != nil {
			t.Fatalf("a truncated lenenc string decodes (%d bytes used)", used)
		}

		vals := []*string{&name, &value, nil, &msg}
		for i := range vals {
			if nulls&(1<<i) != 0 {
				vals[i] = nil
			}
		}
		row := wire.AppendTextRow(nil, vals)
		for i, want := range vals {
			got, isNull, used := wire.LenencString(row)
			if used == 0 || isNull != (want == nil) || (want != nil && string(got) != *want) {
				t.Fatalf("column %d of a text row: %q null %v (used %d)", i, got, isNull, used)
			}
			row = row[used:]
		}
		if len(row) != 0 {
			t.Fatalf("%d bytes left after the text row", len(row))
		}

		def := wire.AppendColumnDef(nil, wire.Column{Schema: msg, Table: value, Name: name, OrgName: name})
		if got, ok := wire.ParseColumnName(def); !ok || got != name {
			t.Fatalf("column name %q parses as %q, %v", name, got, ok)
		}
		for i := range def { // a truncated definition never reads past its end
			_, _ = wire.ParseColumnName(def[:i])
		}

		e := wire.ParseErr(wire.AppendErr(nil, &sqlerr.Error{Code: code, State: state, Message: msg}))
		wantCode, wantState, wantMsg := code, state, msg
		if len(state) != 5 {
			wantState = "HY000"
		}
		if code >= sqlerr.MinClientCode && code <= sqlerr.MaxClientCode {
			// Client-range codes never reach the wire: libmariadb reads them as a malformed
			// packet, so AppendErr sends 1105 naming the original code.
			wantCode, wantMsg = sqlerr.ErUnknownError, fmt.Sprintf("%s (client error code %d)", msg, code)
		}
		if e.Code != wantCode || e.State != wantState || e.Message != wantMsg {
			t.Fatalf("ERR %d %q %q decodes as %d %q %q", code, state, msg, e.Code, e.State, e.Message)
		}
	})
}
