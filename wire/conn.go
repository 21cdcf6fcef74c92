// Package wire frames MySQL protocol packets and encodes the few generic packets (OK, ERR,
// EOF) that both sides of the proxy read and write.
//
// It is shared by protocol (the client side) and pool (the backend side) and imports only
// sqlerr and go-mysql's constants. It knows nothing of sessions, shards or SQL.
package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
)

// MaxPayload is the largest payload of one physical packet; a logical packet of this size or
// more continues in the next physical packet.
const MaxPayload = 1<<24 - 1

// Errors returned by Conn.
var (
	ErrPacketTooLarge = errors.New("wire: packet larger than the allowed maximum")
	ErrSequence       = errors.New("wire: packet out of sequence")
)

// Conn reads and writes MySQL packets on a net.Conn.
//
// Reads are buffered; a payload returned by ReadPacket is valid only until the next read.
// Writes go to a buffer that Flush sends: callers flush before waiting for the peer, which
// turns a result set into a few large writes instead of one syscall per packet.
// A Conn is used by one goroutine at a time.
type Conn struct {
	nc  net.Conn
	br  *bufio.Reader
	bw  *bufio.Writer
	seq uint8
	buf []byte // payloads larger than the read buffer, or joined from several packets
	hdr [4]byte

	// MaxPacket bounds the size of a logical packet accepted by ReadPacket; 0 means no bound.
	MaxPacket int
}

// NewConn wraps nc with read and write buffers of size bufSize.
func NewConn(nc net.Conn, bufSize int) *Conn {
	if bufSize < 4096 {
		bufSize = 4096
	}
	return &Conn{nc: nc, br: bufio.NewReaderSize(nc, bufSize), bw: bufio.NewWriterSize(nc, bufSize)}
}

// Resize replaces the read and write buffers with ones of size bufSize (at least 4096), for
// example to grow them once a client has logged in. Nothing may be buffered for writing;
// bytes already read into the old read buffer are kept in front of the new one.
func (c *Conn) Resize(bufSize int) {
	bufSize = max(bufSize, 4096)
	if c.br.Size() == bufSize {
		return
	}
	var r io.Reader = c.nc
	if early := c.TakeBuffered(); len(early) > 0 {
		r = io.MultiReader(bytes.NewReader(early), c.nc)
	}
	c.br = bufio.NewReaderSize(r, bufSize)
	c.bw = bufio.NewWriterSize(c.nc, bufSize)
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Replace swaps the underlying connection, for example after a TLS handshake. Nothing may be
// buffered in either direction when it is called.
func (c *Conn) Replace(nc net.Conn) {
	c.nc = nc
	c.br.Reset(nc)
	c.bw.Reset(nc)
}

// Buffered reports how many bytes are waiting in the read buffer.
func (c *Conn) Buffered() int { return c.br.Buffered() }

// TakeBuffered removes and returns the bytes read from the connection but not yet consumed
// as packets (for example a TLS ClientHello that arrived with the SSLRequest).
func (c *Conn) TakeBuffered() []byte {
	n := c.br.Buffered()
	if n == 0 {
		return nil
	}
	b, _ := c.br.Peek(n)
	out := append([]byte(nil), b...)
	_, _ = c.br.Discard(n)
	return out
}

// Seq returns the sequence number the next packet will carry.
func (c *Conn) Seq() uint8 { return c.seq }

// SetSeq sets the sequence number of the next packet.
func (c *Conn) SetSeq(s uint8) { c.seq = s }

// ResetSeq starts a new command exchange (sequence 0).
func (c *Conn) ResetSeq() { c.seq = 0 }

// ReadPacket reads one logical packet and returns its payload. The payload aliases an
// internal buffer and is valid only until the next call.
func (c *Conn) ReadPacket() ([]byte, error) {
	n, err := c.readHeader()
	if err != nil {
		return nil, err
	}
	if n < MaxPayload && n <= c.br.Size() {
		// Common case: the whole packet fits in the read buffer; return it without copying.
		p, err := c.br.Peek(n)
		if err != nil {
			return nil, fmt.Errorf("wire: read payload: %w", unexpectedEOF(err))
		}
		_, _ = c.br.Discard(n)
		return p, nil
	}
	if cap(c.buf) > keepBuf {
		c.buf = nil // the previous large payload is no longer needed: let it go
	}
	c.buf = c.buf[:0]
	for {
		if c.MaxPacket > 0 && len(c.buf)+n > c.MaxPacket {
			return nil, ErrPacketTooLarge
		}
		if err := c.readPayload(n); err != nil {
			return nil, fmt.Errorf("wire: read payload: %w", unexpectedEOF(err))
		}
		if n < MaxPayload {
			return c.buf, nil
		}
		if n, err = c.readHeader(); err != nil {
			return nil, fmt.Errorf("wire: read continuation: %w", unexpectedEOF(err))
		}
	}
}

// TrimBuffer lets go of the buffer that held a large payload (more than 1 MiB), so an idle
// connection does not keep the memory of its largest packet. Payloads returned earlier must
// no longer be in use.
func (c *Conn) TrimBuffer() {
	if cap(c.buf) > keepBuf {
		c.buf = nil
	}
}

// readChunk bounds how much of an announced payload is allocated ahead of the bytes that
// arrive: a header is a claim, and a peer that announces 16 MiB and sends nothing more must
// not cost 16 MiB.
const readChunk = 64 << 10

// keepBuf is the largest joined-payload buffer a Conn keeps between packets.
const keepBuf = 1 << 20

// readPayload appends n bytes read from the connection to c.buf, growing it chunk by chunk
// as the bytes arrive.
func (c *Conn) readPayload(n int) error {
	for n > 0 {
		k := min(n, readChunk)
		start := len(c.buf)
		c.buf = slices.Grow(c.buf, k)[:start+k]
		if _, err := io.ReadFull(c.br, c.buf[start:]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (c *Conn) readHeader() (int, error) {
	if _, err := io.ReadFull(c.br, c.hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("wire: read header: %w", err)
		}
		return 0, err // io.EOF: the peer closed between packets
	}
	n := int(c.hdr[0]) | int(c.hdr[1])<<8 | int(c.hdr[2])<<16
	if c.hdr[3] != c.seq {
		return 0, fmt.Errorf("%w: got %d, want %d", ErrSequence, c.hdr[3], c.seq)
	}
	c.seq++
	if c.MaxPacket > 0 && n > c.MaxPacket {
		return 0, ErrPacketTooLarge
	}
	return n, nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// WritePacket buffers payload as one logical packet (split if it is 16 MiB or more).
func (c *Conn) WritePacket(payload []byte) error {
	for {
		n := len(payload)
		if n > MaxPayload {
			n = MaxPayload
		}
		c.hdr = [4]byte{byte(n), byte(n >> 8), byte(n >> 16), c.seq}
		c.seq++
		if _, err := c.bw.Write(c.hdr[:]); err != nil {
			return err
		}
		if _, err := c.bw.Write(payload[:n]); err != nil {
			return err
		}
		payload = payload[n:]
		if n < MaxPayload {
			return nil
		}
	}
}

// WriteCommand writes a command packet, the command byte followed by data, without
// copying data into a payload of its own first (a statement can be megabytes).
func (c *Conn) WriteCommand(cmd byte, data []byte) error {
	return c.writeCommand(cmd, len(data), func(from, to int) error {
		_, err := c.bw.Write(data[from:to])
		return err
	})
}

// WriteCommandString is WriteCommand for data held in a string (not copied either).
func (c *Conn) WriteCommandString(cmd byte, data string) error {
	return c.writeCommand(cmd, len(data), func(from, to int) error {
		_, err := c.bw.WriteString(data[from:to])
		return err
	})
}

// writeCommand frames a command byte and size bytes of data, which write buffers by range.
func (c *Conn) writeCommand(cmd byte, size int, write func(from, to int) error) error {
	off, first := 0, true
	for {
		n := size - off
		if first {
			n++
		}
		n = min(n, MaxPayload)
		c.hdr = [4]byte{byte(n), byte(n >> 8), byte(n >> 16), c.seq}
		c.seq++
		if _, err := c.bw.Write(c.hdr[:]); err != nil {
			return err
		}
		m := n
		if first {
			if err := c.bw.WriteByte(cmd); err != nil {
				return err
			}
			m, first = n-1, false
		}
		if err := write(off, off+m); err != nil {
			return err
		}
		off += m
		if n < MaxPayload {
			return nil
		}
	}
}

// Flush sends everything buffered.
func (c *Conn) Flush() error { return c.bw.Flush() }

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.nc.Close() }
