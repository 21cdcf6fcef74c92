package wire_test

import (
	"bytes"
	"testing"

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
// and SetStatus must change only the status bytes.
func FuzzParseOK(f *testing.F) {
	f.Add([]byte{0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00})
	f.Add([]byte{0x00, 0xfc, 0xfb, 0x00, 0xfd, 0x01, 0x02, 0x03, 0x22, 0x00, 0x01, 0x00, 'h', 'i'})
	f.Add([]byte{0x00, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0x00, 0x00, 0x00})
	f.Add([]byte{0xfe, 0x00, 0x00, 0x02, 0x00})
	f.Add([]byte{0xff, 0x15, 0x04, '#', '2', '8', '0', '0', '0', 'x'})
	f.Add([]byte{0x00, 0xfc})
	f.Add([]byte{0x00})
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
		back, err := wire.ParseOK(wire.AppendOK(nil, ok))
		if err != nil || back != ok {
			t.Fatalf("re-encoded OK parses as %+v, %v; want %+v", back, err, ok)
		}
	})
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
