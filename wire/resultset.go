package wire

import "encoding/binary"

// Column describes a result column for result sets the proxy builds itself.
type Column struct {
	Schema, Table, OrgTable, Name, OrgName string
	Charset                                uint16 // collation id; 63 is binary
	Length                                 uint32
	Type                                   byte // MYSQL_TYPE_*
	Flags                                  uint16
	Decimals                               byte
}

// AppendColumnDef appends a Protocol::ColumnDefinition41 payload.
func AppendColumnDef(b []byte, c Column) []byte {
	b = AppendLenencString(b, "def")
	b = AppendLenencString(b, c.Schema)
	b = AppendLenencString(b, c.Table)
	b = AppendLenencString(b, c.OrgTable)
	b = AppendLenencString(b, c.Name)
	b = AppendLenencString(b, c.OrgName)
	b = append(b, 0x0c)
	b = binary.LittleEndian.AppendUint16(b, c.Charset)
	b = binary.LittleEndian.AppendUint32(b, c.Length)
	b = append(b, c.Type)
	b = binary.LittleEndian.AppendUint16(b, c.Flags)
	b = append(b, c.Decimals, 0, 0)
	return b
}

// AppendTextRow appends a text-protocol row; a nil value is NULL.
func AppendTextRow(b []byte, values []*string) []byte {
	for _, v := range values {
		if v == nil {
			b = append(b, 0xfb)
			continue
		}
		b = AppendLenencString(b, *v)
	}
	return b
}

// AppendBinaryTextRow appends a binary-protocol row whose columns are all strings (a nil
// value is NULL): the 0x00 header, the NULL bitmap (offset by 2 bits), then the values.
func AppendBinaryTextRow(b []byte, values []*string) []byte {
	b = AppendBinaryRowHeader(b, len(values), func(i int) bool { return values[i] == nil })
	for _, v := range values {
		if v != nil {
			b = AppendLenencString(b, *v)
		}
	}
	return b
}

// AppendBinaryRowHeader appends a binary-protocol row's 0x00 header and its NULL bitmap
// (offset by 2 bits) for n columns; null reports whether column i is NULL.
func AppendBinaryRowHeader(b []byte, n int, null func(i int) bool) []byte {
	b = append(b, 0x00)
	start := len(b)
	b = append(b, make([]byte, (n+7+2)/8)...)
	for i := range n {
		if null(i) {
			b[start+(i+2)/8] |= 1 << ((i + 2) % 8)
		}
	}
	return b
}

// PacketWriter is where result packets go (the client connection, or a buffer).
type PacketWriter interface {
	WritePacket(payload []byte) error
}

// WriteTextResult writes a whole text-protocol result set: column count, definitions, EOF,
// rows, EOF with status.
func WriteTextResult(w PacketWriter, cols []Column, rows [][]*string, status uint16) error {
	buf := AppendLenencInt(nil, uint64(len(cols)))
	if err := w.WritePacket(buf); err != nil {
		return err
	}
	for _, c := range cols {
		buf = AppendColumnDef(buf[:0], c)
		if err := w.WritePacket(buf); err != nil {
			return err
		}
	}
	if err := w.WritePacket(AppendEOF(buf[:0], 0, status)); err != nil {
		return err
	}
	for _, r := range rows {
		buf = AppendTextRow(buf[:0], r)
		if err := w.WritePacket(buf); err != nil {
			return err
		}
	}
	return w.WritePacket(AppendEOF(buf[:0], 0, status))
}

// ParseColumnName returns the name field of a column-definition payload.
func ParseColumnName(p []byte) (string, bool) {
	for i := 0; i < 4; i++ { // catalog, schema, table, org_table
		_, _, n := LenencString(p)
		if n == 0 {
			return "", false
		}
		p = p[n:]
	}
	name, _, n := LenencString(p)
	return string(name), n > 0
}

// Param is one bound parameter of a prepared statement, in the binary protocol encoding.
type Param struct {
	Type     byte   // MYSQL_TYPE_*
	Unsigned bool   // the unsigned flag of the type
	Null     bool   // NULL (Value is empty)
	Value    []byte // the value's binary encoding, length prefix included for strings
}
