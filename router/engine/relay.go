package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Outcome is what the proxy learns from a relayed response.
type Outcome struct {
	Status       uint16
	LastInsertID uint64
	Affected     uint64
	Warnings     uint16 // of the last result
	Rows         int64  // rows of the last result set; -1 when it was an OK
}

// ErrBackendIO wraps an I/O failure on a backend connection; the connection is discarded.
var ErrBackendIO = errors.New("router: backend connection failed")

// IOErr turns a failed backend read or write into the error the session returns: the
// context's error when it was cancelled or its deadline passed, ErrBackendIO otherwise. c is
// marked broken.
func IOErr(ctx context.Context, c Conn, err error) error {
	c.State().MarkBroken()
	if ctx.Err() != nil {
		return fmt.Errorf("%w (backend connection %d)", context.Cause(ctx), c.ID())
	}
	if DeadlinePassed(ctx) {
		// The timer that marks ctx done may run late on a loaded machine: a read whose
		// connection was lost after its deadline answers 3024, as once the timer ran. The
		// loss stays ErrBackendIO: a write's outcome is still unknown (router's lostWrite).
		return fmt.Errorf("%w: %w: %w (backend connection %d: %v)", ErrBackendIO, sqlerr.New(sqlerr.ErQueryTimeout,
			"Query execution was interrupted, maximum statement execution time exceeded"), context.DeadlineExceeded, c.ID(), err)
	}
	return fmt.Errorf("%w: %w", ErrBackendIO, sqlerr.New(sqlerr.ErConnLost,
		"Lost connection to the backend during the statement (backend connection %d: %v); it may or may not have run", c.ID(), err))
}

// DeadlinePassed reports whether ctx's deadline has passed, even if its timer has not yet
// marked ctx done.
func DeadlinePassed(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// SendCommand writes one command packet (command byte + data) to the backend.
func SendCommand(ctx context.Context, c Conn, cmd byte, data ...[]byte) error {
	bw := c.Wire()
	bw.ResetSeq()
	if len(data) == 1 {
		if err := bw.WriteCommand(cmd, data[0]); err != nil {
			return IOErr(ctx, c, err)
		}
		if err := bw.Flush(); err != nil {
			return IOErr(ctx, c, err)
		}
		return nil
	}
	n := 1
	for _, d := range data {
		n += len(d)
	}
	p := make([]byte, 0, n)
	p = append(p, cmd)
	for _, d := range data {
		p = append(p, d...)
	}
	if err := bw.WritePacket(p); err != nil {
		return IOErr(ctx, c, err)
	}
	if err := bw.Flush(); err != nil {
		return IOErr(ctx, c, err)
	}
	return nil
}

// relay copies one command's response (every result of it) from c to w, packet by packet,
// without decoding rows. With more set, the final packet announces more results to come
// (a multi-statement query being executed statement by statement). A backend ERR packet is
// returned as its *sqlerr.Error; the connection stays usable.
func Relay(ctx context.Context, c Conn, w wire.PacketWriter, more bool) (Outcome, error) {
	return RelayResults(ctx, c, w, more, false)
}

// RelayResults is relay for text (bin false) or binary-protocol (the answer to
// COM_STMT_EXECUTE) result sets. Every packet is checked against the protocol before it is
// relayed: a malformed one (an empty packet, a column count with fewer definitions, a row
// whose lengths run past its end) fails the statement and breaks the connection.
func RelayResults(ctx context.Context, c Conn, w wire.PacketWriter, more, bin bool) (Outcome, error) {
	bw := c.Wire()
	var out Outcome
	for {
		p, err := bw.ReadPacket()
		if err != nil {
			return out, IOErr(ctx, c, err)
		}
		switch {
		case len(p) == 0:
			return out, Malformed(c, "an empty packet")
		case wire.IsErr(p):
			return out, wire.ParseErr(p)
		case p[0] == wire.OKHeader:
			ok, err := wire.ParseOK(p)
			if err != nil {
				return out, Malformed(c, "an OK packet that does not parse")
			}
			out.Status, out.Affected, out.Warnings, out.Rows = ok.Status, ok.AffectedRows, ok.Warnings, -1
			if ok.LastInsertID != 0 {
				out.LastInsertID = ok.LastInsertID
			}
			if ok.Status&wire.StatusMoreResults == 0 && more {
				wire.SetStatus(p, 0, wire.StatusMoreResults)
			}
			if err := w.WritePacket(p); err != nil {
				c.State().MarkBroken()
				return out, err
			}
		case p[0] == wire.LocalInfileHeader:
			if err := relayLocalFile(ctx, c, w, p); err != nil { // infile.go
				return out, err
			}
			continue // the statement's OK or ERR follows the file
		default:
			if out.Status, out.Warnings, out.Rows, err = relayResultSet(ctx, c, w, p, more, bin); err != nil {
				return out, err
			}
		}
		// out.Status is the backend's own status: it announces more results of this
		// command (a CALL), not the flag relay may have added for the client.
		if out.Status&wire.StatusMoreResults == 0 {
			c.State().SetStatus(out.Status)
			return out, nil
		}
	}
}

// Malformed marks c broken and returns the error a statement fails with when its backend
// sent a packet that does not follow the protocol (what says which).
func Malformed(c Conn, what string) error {
	c.State().MarkBroken()
	return fmt.Errorf("%w: %w", ErrBackendIO, sqlerr.New(sqlerr.ErNetReadError,
		"Got an error reading communication packets: backend connection %d sent %s; the statement may or may not have run", c.ID(), what))
}

// relayResultSet relays a result set whose column-count packet is first.
func relayResultSet(ctx context.Context, c Conn, w wire.PacketWriter, first []byte, more, bin bool) (status, warnings uint16, rows int64, err error) {
	bw := c.Wire()
	ncols, n := wire.LenencInt(first)
	if n == 0 || n != len(first) || ncols == 0 || ncols > wire.MaxColumns {
		return 0, 0, 0, Malformed(c, "a Malformed column count")
	}
	// Column definitions, then the EOF that ends them: checked before any of them reaches
	// the client (which cannot take an ERR packet among them), then rows until EOF or ERR.
	var types []byte
	if bin {
		types = make([]byte, 0, min(ncols, 64))
	}
	hdr := append(make([]byte, 0, 256), first...)
	ends := append(make([]int, 0, min(ncols, 64)+2), len(hdr))
	for i := uint64(0); i <= ncols; i++ {
		p, err := bw.ReadPacket()
		if err != nil {
			return 0, 0, 0, IOErr(ctx, c, err)
		}
		if i == ncols {
			if !wire.IsEOF(p) {
				return 0, 0, 0, Malformed(c, "no EOF after the column definitions")
			}
		} else if cd, ok := wire.ParseColDef(p); !ok {
			return 0, 0, 0, Malformed(c, fmt.Sprintf("a Malformed definition of column %d of %d", i+1, ncols))
		} else if bin {
			types = append(types, cd.Type)
		}
		hdr = append(hdr, p...)
		ends = append(ends, len(hdr))
	}
	start := 0
	for _, end := range ends {
		if err := w.WritePacket(hdr[start:end]); err != nil {
			c.State().MarkBroken()
			return 0, 0, 0, err
		}
		start = end
	}
	for {
		p, err := bw.ReadPacket()
		if err != nil {
			return 0, 0, 0, IOErr(ctx, c, err)
		}
		if wire.IsErr(p) {
			return 0, 0, 0, wire.ParseErr(p)
		}
		if wire.IsEOF(p) {
			status, _ = wire.Status(p)
			if len(p) >= 3 {
				warnings = binary.LittleEndian.Uint16(p[1:])
			}
			if status&wire.StatusMoreResults == 0 && more {
				wire.SetStatus(p, 0, wire.StatusMoreResults)
			}
			if err := w.WritePacket(p); err != nil {
				c.State().MarkBroken()
				return 0, 0, 0, err
			}
			return status, warnings, rows, nil
		}
		if bin && !wire.CheckBinaryRow(p, types) || !bin && !wire.CheckTextRow(p, int(ncols)) {
			return 0, 0, 0, Malformed(c, fmt.Sprintf("a Malformed row (row %d)", rows+1))
		}
		if err := w.WritePacket(p); err != nil {
			c.State().MarkBroken()
			return 0, 0, 0, err
		}
		rows++
	}
}

// Discard is a PacketWriter that drops everything.
type Discard struct{}

func (Discard) WritePacket([]byte) error { return nil }

// Collector keeps copies of the packets written to it.
type Collector struct{ Pkts [][]byte }

func (k *Collector) WritePacket(p []byte) error {
	k.Pkts = append(k.Pkts, append([]byte(nil), p...))
	return nil
}

// QueryRows runs a text query on c and returns its rows (nil values for NULL).
func QueryRows(ctx context.Context, c Conn, query string) ([][]*string, error) {
	it := Watch(ctx, c, nil)
	defer it.Stop()
	if err := SendCommand(ctx, c, ComQuery, []byte(query)); err != nil {
		return nil, err
	}
	var k Collector
	if _, err := Relay(ctx, c, &k, false); err != nil {
		return nil, err
	}
	// column count, definitions, EOF, rows..., EOF
	if len(k.Pkts) < 3 {
		return nil, nil
	}
	ncols, _ := wire.LenencInt(k.Pkts[0])
	if ncols > wire.MaxColumns || 1+int(ncols)+1 > len(k.Pkts)-1 {
		return nil, Malformed(c, "a result set shorter than its column count")
	}
	var rows [][]*string
	for _, row := range k.Pkts[1+int(ncols)+1 : len(k.Pkts)-1] {
		vals := make([]*string, 0, ncols)
		for range ncols {
			v, null, n := wire.LenencString(row)
			if n == 0 {
				return nil, fmt.Errorf("router: Malformed row from backend: %w", wire.ErrMalformed)
			}
			row = row[n:]
			if null {
				vals = append(vals, nil)
				continue
			}
			s := string(v)
			vals = append(vals, &s)
		}
		rows = append(rows, vals)
	}
	return rows, nil
}

// QueryRow runs a text query on c and returns its first row (nil if it has none).
func QueryRow(ctx context.Context, c Conn, query string) ([]*string, error) {
	rows, err := QueryRows(ctx, c, query)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return rows[0], nil
}

// MySQL command bytes the engine sends.
const (
	ComQuery       = 0x03
	ComInitDB      = 0x02
	ComFieldList   = 0x04
	ComStmtPrepare = 0x16
	ComStmtExecute = 0x17
	ComStmtClose   = 0x19
)
