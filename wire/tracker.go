package wire

// ResultPart is what a packet of a text-protocol response is (ResultTracker.Next).
type ResultPart uint8

// The parts of a response, as ResultTracker.Next names them.
const (
	PartOther       ResultPart = iota // outside a result set, not an OK, ERR or column count
	PartOK                            // an OK packet outside a result set
	PartErr                           // an ERR packet (it ends a result set it is in)
	PartColumnCount                   // the column count that opens a result set
	PartColumnDef                     // one of its column definitions
	PartDefsEOF                       // the EOF after the column definitions
	PartRow                           // a row
	PartEnd                           // the EOF after the rows, which ends the result set
)

// ResultTracker follows the packets of text-protocol responses as they pass, one at a
// time, and names each (Next): the PacketWriters that read or rewrite results on their way
// to the client share it instead of each counting packets its own way. A result set opens
// with a column count (1 to MaxColumns, the whole packet) and holds that many definitions,
// an EOF, rows and a closing EOF; ERR ends it; several follow each other in a response with
// more results. The zero value is outside a result set.
type ResultTracker struct {
	n    int // column count of the current result set; 0 outside one
	seen int // its packets seen after the column count
}

// Next names p, the next packet of the response, and moves past it.
func (t *ResultTracker) Next(p []byte) ResultPart {
	if t.n == 0 {
		switch {
		case IsErr(p):
			return PartErr
		case len(p) > 0 && p[0] == OKHeader:
			return PartOK
		}
		if n, k := LenencInt(p); k == len(p) && k > 0 && n > 0 && n <= MaxColumns {
			t.n, t.seen = int(n), 0
			return PartColumnCount
		}
		return PartOther
	}
	t.seen++
	switch {
	case t.seen <= t.n:
		return PartColumnDef
	case t.seen == t.n+1:
		return PartDefsEOF
	case IsErr(p):
		t.n = 0
		return PartErr
	case IsEOF(p):
		t.n = 0
		return PartEnd
	}
	return PartRow
}

// Columns is the column count of the result set the last packet belongs to (0 outside
// one; still the count at its closing EOF or ERR).
func (t *ResultTracker) Columns() int { return t.n }
