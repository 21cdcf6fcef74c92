package wire

import "encoding/binary"

// ColDef is what a merge or a binary row encoding needs from a column definition.
type ColDef struct {
	Type      byte
	Flags     uint16
	Decimals  byte
	Collation uint16 // the character set number: a collation id (63: binary)
}

// ParseColDef checks a column definition packet and reads what ColDef holds.
func ParseColDef(p []byte) (ColDef, bool) {
	for range 6 { // catalog, schema, table, org_table, name, org_name
		_, _, n := LenencString(p)
		if n == 0 {
			return ColDef{}, false
		}
		p = p[n:]
	}
	if len(p) < 11 {
		return ColDef{}, false
	}
	// 0x0c, charset(2), length(4), type, flags(2), decimals
	return ColDef{Type: p[7], Flags: binary.LittleEndian.Uint16(p[8:]), Decimals: p[10], Collation: binary.LittleEndian.Uint16(p[1:])}, true
}
