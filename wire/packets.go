package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/shardproxy/shardproxy/sqlerr"
)

// First bytes of generic response packets.
const (
	OKHeader          = 0x00
	EOFHeader         = 0xfe
	ErrHeader         = 0xff
	LocalInfileHeader = 0xfb
)

// Server status flags (the subset the proxy reads or sets).
const (
	StatusInTrans         uint16 = 0x0001
	StatusAutocommit      uint16 = 0x0002
	StatusMoreResults     uint16 = 0x0008
	StatusNoBackslashEsc  uint16 = 0x0200
	StatusInTransReadonly uint16 = 0x2000
	StatusStateChanged    uint16 = 0x4000 // SERVER_SESSION_STATE_CHANGED: session-state info follows the info
)

// ErrMalformed reports a packet that does not parse.
var ErrMalformed = errors.New("wire: malformed packet")

// OK is the content of an OK packet.
//
// After the warning count comes the info, a length-encoded string, written only when there
// is a message (or session-state info follows). The protocol documentation calls it
// string<EOF> on a connection without CLIENT_SESSION_TRACK, but MariaDB (and MySQL) write a
// length-encoded string either way, and libmariadb reads one either way: MariaDB 10.11 on a
// backend connection (which has no CLIENT_SESSION_TRACK) answers an UPDATE with
// 00 02 00 2200 0000 28 "Rows matched: 3  Changed: 2  Warnings: 0" (0x28 = 40 bytes).
// With CLIENT_SESSION_TRACK and StatusStateChanged, the session-state info follows the
// info; the proxy uses neither and keeps those bytes as they are, so that a re-encoded OK
// is the packet the server sent.
type OK struct {
	AffectedRows uint64
	LastInsertID uint64
	Status       uint16
	Warnings     uint16
	Info         string // the message, decoded: "Rows matched: 3  Changed: 2  Warnings: 0"
	SessionState string // the bytes after the info (its own length prefix included), as sent
}

// IsEOF reports whether p is an EOF packet (0xfe and shorter than 9 bytes; a row starting
// with 0xfe is always longer).
func IsEOF(p []byte) bool { return len(p) > 0 && p[0] == EOFHeader && len(p) < 9 }

// IsErr reports whether p is an ERR packet.
func IsErr(p []byte) bool { return len(p) > 0 && p[0] == ErrHeader }

// ParseOK decodes an OK packet (header 0x00, or 0xfe for an OK that ends a result set).
func ParseOK(p []byte) (OK, error) {
	var ok OK
	if len(p) < 1 {
		return ok, ErrMalformed
	}
	pos := 1
	var n int
	ok.AffectedRows, n = LenencInt(p[pos:])
	if n == 0 {
		return ok, ErrMalformed
	}
	pos += n
	ok.LastInsertID, n = LenencInt(p[pos:])
	if n == 0 {
		return ok, ErrMalformed
	}
	pos += n
	if len(p) < pos+4 {
		return ok, ErrMalformed
	}
	ok.Status = binary.LittleEndian.Uint16(p[pos:])
	ok.Warnings = binary.LittleEndian.Uint16(p[pos+2:])
	pos += 4
	if pos == len(p) {
		return ok, nil
	}
	info, null, n := LenencString(p[pos:])
	if n == 0 || null { // libmariadb reads an info longer than the packet as corrupted
		return ok, ErrMalformed
	}
	ok.Info = string(info)
	if pos += n; pos < len(p) {
		ok.SessionState = string(p[pos:])
	}
	return ok, nil
}

// OKStatusOffset returns where the status flags of OK packet p start, or -1.
func OKStatusOffset(p []byte) int {
	if len(p) < 1 {
		return -1
	}
	pos := 1
	for range 2 {
		_, n := LenencInt(p[pos:])
		if n == 0 {
			return -1
		}
		pos += n
	}
	if len(p) < pos+4 {
		return -1
	}
	return pos
}

// Status returns the status flags of an OK or EOF packet, and whether p had any.
func Status(p []byte) (uint16, bool) {
	if IsEOF(p) {
		if len(p) < 5 {
			return 0, false
		}
		return binary.LittleEndian.Uint16(p[3:]), true
	}
	if len(p) > 0 && p[0] == OKHeader {
		if off := OKStatusOffset(p); off >= 0 {
			return binary.LittleEndian.Uint16(p[off:]), true
		}
	}
	return 0, false
}

// SetStatus rewrites in place the status flags of an OK or EOF packet: clear, then set.
func SetStatus(p []byte, clear, set uint16) {
	off := -1
	if IsEOF(p) && len(p) >= 5 {
		off = 3
	} else if len(p) > 0 && p[0] == OKHeader {
		off = OKStatusOffset(p)
	}
	if off < 0 {
		return
	}
	s := binary.LittleEndian.Uint16(p[off:])
	binary.LittleEndian.PutUint16(p[off:], s&^clear|set)
}

// AppendOK appends an OK packet's payload to b: the info length-encoded, as the server
// writes it, and only when there is one or session-state info follows.
func AppendOK(b []byte, ok OK) []byte {
	b = append(b, OKHeader)
	b = AppendLenencInt(b, ok.AffectedRows)
	b = AppendLenencInt(b, ok.LastInsertID)
	b = binary.LittleEndian.AppendUint16(b, ok.Status)
	b = binary.LittleEndian.AppendUint16(b, ok.Warnings)
	if ok.Info == "" && ok.SessionState == "" {
		return b
	}
	b = AppendLenencString(b, ok.Info)
	return append(b, ok.SessionState...)
}

// AppendEOF appends an EOF packet's payload to b.
func AppendEOF(b []byte, warnings, status uint16) []byte {
	b = append(b, EOFHeader)
	b = binary.LittleEndian.AppendUint16(b, warnings)
	return binary.LittleEndian.AppendUint16(b, status)
}

// AppendErr appends an ERR packet's payload to b. A client-range code (2000-2999), which
// no server sends and libmariadb reads as a malformed packet, goes out as 1105
// ER_UNKNOWN_ERROR with the original code in the message: the proxy's own errors carry
// server codes, this is the last line of defence.
func AppendErr(b []byte, e *sqlerr.Error) []byte {
	code, msg := e.Code, e.Message
	if code >= sqlerr.MinClientCode && code <= sqlerr.MaxClientCode {
		code, msg = sqlerr.ErUnknownError, fmt.Sprintf("%s (client error code %d)", msg, e.Code)
	}
	b = append(b, ErrHeader)
	b = binary.LittleEndian.AppendUint16(b, code)
	state := e.State
	if len(state) != 5 {
		state = "HY000"
	}
	b = append(b, '#')
	b = append(b, state...)
	return append(b, msg...)
}

// ParseErr decodes an ERR packet.
func ParseErr(p []byte) *sqlerr.Error {
	if len(p) < 3 {
		return sqlerr.New(sqlerr.ErUnknownError, "malformed error packet from backend")
	}
	e := &sqlerr.Error{Code: binary.LittleEndian.Uint16(p[1:]), State: "HY000"}
	rest := p[3:]
	if len(rest) >= 6 && rest[0] == '#' {
		e.State = string(rest[1:6])
		rest = rest[6:]
	}
	e.Message = string(rest)
	return e
}

// LenencInt decodes a length-encoded integer; n is the bytes used (0 if p is too short).
// The NULL marker (0xfb) decodes as 0 with n = 1.
func LenencInt(p []byte) (v uint64, n int) {
	if len(p) == 0 {
		return 0, 0
	}
	switch p[0] {
	case 0xfb:
		return 0, 1
	case 0xfc:
		if len(p) < 3 {
			return 0, 0
		}
		return uint64(binary.LittleEndian.Uint16(p[1:])), 3
	case 0xfd:
		if len(p) < 4 {
			return 0, 0
		}
		return uint64(p[1]) | uint64(p[2])<<8 | uint64(p[3])<<16, 4
	case 0xfe:
		if len(p) < 9 {
			return 0, 0
		}
		return binary.LittleEndian.Uint64(p[1:]), 9
	default:
		return uint64(p[0]), 1
	}
}

// AppendLenencInt appends v as a length-encoded integer.
func AppendLenencInt(b []byte, v uint64) []byte {
	switch {
	case v < 251:
		return append(b, byte(v))
	case v < 1<<16:
		return append(b, 0xfc, byte(v), byte(v>>8))
	case v < 1<<24:
		return append(b, 0xfd, byte(v), byte(v>>8), byte(v>>16))
	default:
		b = append(b, 0xfe)
		return binary.LittleEndian.AppendUint64(b, v)
	}
}

// AppendLenencString appends s with a length-encoded length prefix.
func AppendLenencString(b []byte, s string) []byte {
	b = AppendLenencInt(b, uint64(len(s)))
	return append(b, s...)
}

// LenencString decodes a length-encoded string; n is the bytes used (0 if malformed).
func LenencString(p []byte) (s []byte, isNull bool, n int) {
	if len(p) > 0 && p[0] == 0xfb {
		return nil, true, 1
	}
	l, m := LenencInt(p)
	if m == 0 || uint64(len(p)-m) < l {
		return nil, false, 0
	}
	return p[m : m+int(l)], false, m + int(l)
}
