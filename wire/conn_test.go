package wire_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/wire"
)

// fakeConn is a net.Conn that reads from r and records writes.
type fakeConn struct {
	r      io.Reader
	w      bytes.Buffer
	writes int
	closed bool
}

func newFake(in []byte) *fakeConn { return &fakeConn{r: bytes.NewReader(in)} }

func (f *fakeConn) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *fakeConn) Write(b []byte) (int, error) {
	f.writes++
	return f.w.Write(b)
}
func (f *fakeConn) Close() error                     { f.closed = true; return nil }
func (f *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (f *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (f *fakeConn) SetDeadline(time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// frame builds one physical packet: 3-byte length, sequence, payload.
func frame(seq byte, payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

func TestWritePacketBytes(t *testing.T) {
	f := newFake(nil)
	c := wire.NewConn(f, 0)
	c.SetSeq(2)
	if err := c.WritePacket(wire.AppendOK(nil, wire.OK{Status: wire.StatusAutocommit})); err != nil {
		t.Fatal(err)
	}
	if err := c.WritePacket(wire.AppendEOF(nil, 0, wire.StatusAutocommit)); err != nil {
		t.Fatal(err)
	}
	if err := c.WritePacket(nil); err != nil {
		t.Fatal(err)
	}
	if f.writes != 0 {
		t.Fatalf("%d writes before Flush, want 0 (writes are buffered)", f.writes)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	// An OK packet with sequence 2, an EOF with sequence 3, an empty packet with sequence 4.
	want := unhex(t, "07000002 00 00 00 0200 0000"+" 05000003 fe 0000 0200"+" 00000004")
	if !bytes.Equal(f.w.Bytes(), want) {
		t.Errorf("wrote % x\nwant  % x", f.w.Bytes(), want)
	}
	if f.writes != 1 {
		t.Errorf("Flush made %d writes, want 1", f.writes)
	}
	if c.Seq() != 5 {
		t.Errorf("Seq = %d, want 5", c.Seq())
	}
}

func TestReadPacketSequence(t *testing.T) {
	var in []byte
	in = append(in, frame(0, []byte{0x03, 'S', 'E', 'L'})...)
	in = append(in, frame(1, nil)...)
	in = append(in, frame(2, []byte("x"))...)
	c := wire.NewConn(newFake(in), 4096)
	for i, want := range []string{"\x03SEL", "", "x"} {
		p, err := c.ReadPacket()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if string(p) != want {
			t.Errorf("packet %d = %q, want %q", i, p, want)
		}
	}
	if _, err := c.ReadPacket(); err != io.EOF {
		t.Errorf("after the last packet: err = %v, want io.EOF exactly", err)
	}
}

func TestReadPacketErrors(t *testing.T) {
	big := bytes.Repeat([]byte{'b'}, 10000) // larger than the 4096-byte read buffer
	cases := []struct {
		name      string
		in        []byte
		maxPacket int
		want      error
		exact     bool // err == want, not only errors.Is
	}{
		{"clean EOF", nil, 0, io.EOF, true},
		{"EOF inside the header", []byte{5, 0}, 0, io.ErrUnexpectedEOF, false},
		{"EOF inside a small payload", frame(0, []byte("hello"))[:6], 0, io.ErrUnexpectedEOF, false},
		{"EOF inside a large payload", frame(0, big)[:5000], 0, io.ErrUnexpectedEOF, false},
		{"wrong sequence", frame(3, []byte("x")), 0, wire.ErrSequence, false},
		{"above MaxPacket (small path)", frame(0, []byte("12345")), 4, wire.ErrPacketTooLarge, true},
		{"above MaxPacket (large path)", frame(0, big), 9999, wire.ErrPacketTooLarge, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := wire.NewConn(newFake(c.in), 4096)
			conn.MaxPacket = c.maxPacket
			_, err := conn.ReadPacket()
			if !errors.Is(err, c.want) || (c.exact && err != c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestReadPacketAtMaxPacket(t *testing.T) {
	c := wire.NewConn(newFake(frame(0, []byte("1234"))), 4096)
	c.MaxPacket = 4
	if p, err := c.ReadPacket(); err != nil || string(p) != "1234" {
		t.Errorf("a packet of exactly MaxPacket bytes: %q, %v", p, err)
	}
}

func TestReadPacketLargerThanBuffer(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 1000)
	in := append(frame(0, big), frame(1, []byte("small"))...)
	in = append(in, frame(2, big[:5000])...)
	c := wire.NewConn(newFake(in), 4096)
	p, err := c.ReadPacket()
	if err != nil || !bytes.Equal(p, big) {
		t.Fatalf("large packet: len %d, err %v", len(p), err)
	}
	p, err = c.ReadPacket()
	if err != nil || string(p) != "small" {
		t.Fatalf("small packet after a large one: %q, %v", p, err)
	}
	p, err = c.ReadPacket()
	if err != nil || !bytes.Equal(p, big[:5000]) {
		t.Fatalf("second large packet: len %d, err %v", len(p), err)
	}
}

func TestSeqHelpers(t *testing.T) {
	f := newFake(nil)
	c := wire.NewConn(f, 0)
	if c.NetConn() != f {
		t.Error("NetConn is not the wrapped conn")
	}
	c.SetSeq(255)
	if err := c.WritePacket([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if c.Seq() != 0 {
		t.Errorf("sequence after 255 = %d, want 0 (wraps)", c.Seq())
	}
	c.SetSeq(9)
	c.ResetSeq()
	if c.Seq() != 0 {
		t.Errorf("ResetSeq: Seq = %d", c.Seq())
	}
	if err := c.Close(); err != nil || !f.closed {
		t.Errorf("Close: %v, closed=%v", err, f.closed)
	}
}

func TestReplaceAndBuffered(t *testing.T) {
	first := newFake(append(frame(0, []byte("a")), frame(1, []byte("b"))...))
	c := wire.NewConn(first, 0)
	if _, err := c.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	if c.Buffered() != 5 {
		t.Errorf("Buffered = %d, want 5 (the second packet)", c.Buffered())
	}
	if _, err := c.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	if c.Buffered() != 0 {
		t.Errorf("Buffered = %d, want 0", c.Buffered())
	}
	second := newFake(frame(2, []byte("c")))
	c.Replace(second)
	if c.NetConn() != second {
		t.Error("NetConn after Replace")
	}
	if p, err := c.ReadPacket(); err != nil || string(p) != "c" {
		t.Errorf("read after Replace: %q, %v", p, err)
	}
	if err := c.WritePacket([]byte("d")); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if first.w.Len() != 0 || !bytes.Equal(second.w.Bytes(), frame(3, []byte("d"))) {
		t.Errorf("writes after Replace: first % x, second % x", first.w.Bytes(), second.w.Bytes())
	}
}

// pipe returns two Conns joined by net.Pipe; both ends are closed when the test ends.
func pipe(t *testing.T, bufSize int) (*wire.Conn, *wire.Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return wire.NewConn(a, bufSize), wire.NewConn(b, bufSize)
}

// writeAsync writes payloads as consecutive packets and flushes, in a goroutine (net.Pipe
// is synchronous); the returned channel gets the first error or nil.
func writeAsync(c *wire.Conn, payloads ...[]byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		for _, p := range payloads {
			if err := c.WritePacket(p); err != nil {
				done <- err
				return
			}
		}
		done <- c.Flush()
	}()
	return done
}

func TestPipeRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 250, 4095, 4096, 4097, 32 << 10, 100000, wire.MaxPayload - 1}
	w, r := pipe(t, 4096)
	var payloads [][]byte
	for i, n := range sizes {
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(i + j)
		}
		payloads = append(payloads, p)
	}
	done := writeAsync(w, payloads...)
	for i, want := range payloads {
		got, err := r.ReadPacket()
		if err != nil {
			t.Fatalf("packet %d (%d bytes): %v", i, len(want), err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("packet %d (%d bytes) differs", i, len(want))
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w.Seq() != byte(len(sizes)) || r.Seq() != byte(len(sizes)) {
		t.Errorf("sequence after %d packets: writer %d, reader %d", len(sizes), w.Seq(), r.Seq())
	}
}

// TestPipeHugePackets sends logical packets of 16 MiB and more, which MySQL splits into
// physical packets of 0xffffff bytes followed by a shorter one (an empty one when the size
// is an exact multiple), in both directions.
func TestPipeHugePackets(t *testing.T) {
	if testing.Short() {
		t.Skip("moves ~100 MiB through a pipe")
	}
	sizes := []int{wire.MaxPayload, wire.MaxPayload + 1, 16<<20 + 100, 2 * wire.MaxPayload}
	for _, n := range sizes {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		a, b := pipe(t, 32<<10)
		for _, dir := range []struct {
			name string
			w, r *wire.Conn
		}{{"a to b", a, b}, {"b to a", b, a}} {
			dir.w.ResetSeq()
			dir.r.ResetSeq()
			done := writeAsync(dir.w, payload, []byte("after"))
			got, err := dir.r.ReadPacket()
			if err != nil {
				t.Fatalf("%d bytes %s: %v", n, dir.name, err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("%d bytes %s: payload differs (got %d bytes)", n, dir.name, len(got))
			}
			physical := n/wire.MaxPayload + 1
			if dir.r.Seq() != byte(physical) {
				t.Errorf("%d bytes %s: reader sequence %d, want %d physical packets", n, dir.name, dir.r.Seq(), physical)
			}
			if p, err := dir.r.ReadPacket(); err != nil || string(p) != "after" {
				t.Errorf("%d bytes %s: next packet %q, %v", n, dir.name, p, err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestWritePacketSplitBytes checks the physical framing of a 16 MiB + 1 byte packet.
func TestWritePacketSplitBytes(t *testing.T) {
	payload := bytes.Repeat([]byte{0x5a}, wire.MaxPayload+1)
	f := newFake(nil)
	c := wire.NewConn(f, 0)
	c.SetSeq(7)
	if err := c.WritePacket(payload); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	out := f.w.Bytes()
	if len(out) != 4+wire.MaxPayload+4+1 {
		t.Fatalf("wrote %d bytes", len(out))
	}
	if h := out[:4]; !bytes.Equal(h, unhex(t, "ffffff07")) {
		t.Errorf("first header % x, want ff ff ff 07", h)
	}
	if h := out[4+wire.MaxPayload : 8+wire.MaxPayload]; !bytes.Equal(h, unhex(t, "01000008")) {
		t.Errorf("second header % x, want 01 00 00 08", h)
	}
	// Exactly 0xffffff bytes: a trailing empty packet says the logical packet ends.
	f = newFake(nil)
	c = wire.NewConn(f, 0)
	if err := c.WritePacket(payload[:wire.MaxPayload]); err != nil {
		t.Fatal(err)
	}
	_ = c.Flush()
	out = f.w.Bytes()
	if tail := out[len(out)-4:]; len(out) != 8+wire.MaxPayload || !bytes.Equal(tail, unhex(t, "00000001")) {
		t.Errorf("exact 0xffffff: %d bytes, tail % x; want a trailing empty packet 00 00 00 01", len(out), tail)
	}
}

func TestReadContinuationErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 16 MiB inputs")
	}
	first := frame(0, bytes.Repeat([]byte{1}, wire.MaxPayload))
	cases := []struct {
		name      string
		in        []byte
		maxPacket int
		want      error
	}{
		{"continuation out of sequence", append(bytes.Clone(first), frame(5, []byte("x"))...), 0, wire.ErrSequence},
		{"continuation missing", first, 0, io.ErrUnexpectedEOF},
		{"continuation above MaxPacket", append(bytes.Clone(first), frame(1, []byte("xy"))...), wire.MaxPayload + 1, wire.ErrPacketTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := wire.NewConn(newFake(c.in), 0)
			conn.MaxPacket = c.maxPacket
			_, err := conn.ReadPacket()
			if !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
	// At exactly MaxPacket the joined packet is accepted.
	conn := wire.NewConn(newFake(append(bytes.Clone(first), frame(1, []byte("x"))...)), 0)
	conn.MaxPacket = wire.MaxPayload + 1
	if p, err := conn.ReadPacket(); err != nil || len(p) != wire.MaxPayload+1 {
		t.Errorf("joined packet of exactly MaxPacket: %d bytes, %v", len(p), err)
	}
}

func TestWriteError(t *testing.T) {
	a, b := net.Pipe()
	_ = b.Close()
	c := wire.NewConn(a, 0)
	_ = c.WritePacket([]byte("x"))
	if err := c.Flush(); err == nil {
		t.Error("Flush to a closed peer succeeded")
	}
	_ = a.Close()
}

// TestReadPacketAllocatesWhatArrives: a header announcing 16 MiB followed by a few bytes and
// then nothing must not allocate the announced length (lengths are claims).
func TestReadPacketAllocatesWhatArrives(t *testing.T) {
	for _, max := range []int{0, 64 << 20} {
		in := append([]byte{0xff, 0xff, 0xff, 0}, make([]byte, 100)...)
		c := wire.NewConn(newFake(in), 4096)
		c.MaxPacket = max
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := c.ReadPacket()
		runtime.ReadMemStats(&after)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("MaxPacket %d: ReadPacket = %v, want an unexpected EOF", max, err)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
			t.Errorf("MaxPacket %d: reading a 16 MiB header followed by 100 bytes allocated %d bytes", max, got)
		}
	}
}

// TestReadPacketLargeInChunks: a payload larger than the read buffer and than one read
// chunk, split over physical packets, arrives whole.
func TestReadPacketLargeInChunks(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), (wire.MaxPayload+300_000)/16)
	var in []byte
	in = append(in, frame(0, big[:wire.MaxPayload])...)
	in = append(in, frame(1, big[wire.MaxPayload:])...)
	in = append(in, frame(2, []byte("next"))...)
	c := wire.NewConn(newFake(in), 4096)
	p, err := c.ReadPacket()
	if err != nil || !bytes.Equal(p, big) {
		t.Fatalf("ReadPacket: %d bytes, %v; want %d bytes", len(p), err, len(big))
	}
	if p, err := c.ReadPacket(); err != nil || string(p) != "next" {
		t.Fatalf("next packet: %q, %v", p, err)
	}
}

// TestResizeKeepsBufferedBytes: bytes read ahead into the old buffer are read first.
func TestResizeKeepsBufferedBytes(t *testing.T) {
	in := append(frame(0, []byte("one")), frame(1, []byte("two"))...)
	c := wire.NewConn(newFake(in), 4096)
	if p, err := c.ReadPacket(); err != nil || string(p) != "one" {
		t.Fatalf("first: %q, %v", p, err)
	}
	c.Resize(64 << 10)
	if p, err := c.ReadPacket(); err != nil || string(p) != "two" {
		t.Fatalf("after Resize: %q, %v", p, err)
	}
}

// TestTrimBuffer: after a payload larger than 1 MiB, TrimBuffer lets its buffer go; the
// next large payload still arrives whole.
func TestTrimBuffer(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 2<<20)
	in := append(frame(0, big), frame(1, big[:300_000])...)
	c := wire.NewConn(newFake(in), 4096)
	if p, err := c.ReadPacket(); err != nil || len(p) != len(big) {
		t.Fatalf("first: %d bytes, %v", len(p), err)
	}
	c.TrimBuffer()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if p, err := c.ReadPacket(); err != nil || len(p) != 300_000 {
		t.Fatalf("second: %d bytes, %v", len(p), err)
	}
	runtime.ReadMemStats(&after)
	if after.TotalAlloc-before.TotalAlloc < 300_000 {
		t.Errorf("the second payload reused the 2 MiB buffer: TrimBuffer kept it")
	}
}
