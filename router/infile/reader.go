package infile

import (
	"errors"
	"fmt"
)

// ErrRowTooLong reports a row longer than the Reader's bound.
var ErrRowTooLong = errors.New("infile: row too long")

// Format is how a LOAD DATA statement says its file is laid out (its FIELDS and LINES
// clauses, after SQL unescaping). The zero Format is not MariaDB's default: use Default.
type Format struct {
	FieldTerm string // FIELDS TERMINATED BY
	Enclosed  string // FIELDS [OPTIONALLY] ENCLOSED BY: "" or one byte
	Escaped   string // FIELDS ESCAPED BY: "" or one byte
	LineStart string // LINES STARTING BY
	LineTerm  string // LINES TERMINATED BY
}

// Default is MariaDB's layout when a statement names none.
var Default = Format{FieldTerm: "\t", Escaped: `\`, LineTerm: "\n"}

// Check says which part of f the Reader cannot read as MariaDB does, or returns nil.
func (f Format) Check() error {
	for _, o := range []struct{ name, v string }{
		{"FIELDS TERMINATED BY", f.FieldTerm}, {"ENCLOSED BY", f.Enclosed}, {"ESCAPED BY", f.Escaped},
		{"LINES STARTING BY", f.LineStart}, {"LINES TERMINATED BY", f.LineTerm},
	} {
		for i := 0; i < len(o.v); i++ {
			if o.v[i] >= 0x80 {
				return fmt.Errorf("%s with a byte above 0x7F", o.name)
			}
		}
	}
	switch {
	case len(f.Enclosed) > 1 || len(f.Escaped) > 1:
		return errors.New("ENCLOSED BY or ESCAPED BY longer than one character")
	case f.FieldTerm == "" && f.Enclosed == "":
		return errors.New("fixed-width rows (empty FIELDS TERMINATED BY and ENCLOSED BY)")
	case f.LineTerm == "":
		return errors.New("empty LINES TERMINATED BY")
	case f.LineTerm == f.FieldTerm:
		return errors.New("LINES TERMINATED BY equal to FIELDS TERMINATED BY")
	}
	return nil
}

// Source yields the file's next chunk; an empty chunk with a nil error ends the file. A
// chunk is read before the next call only.
type Source func() ([]byte, error)

// Row is one row of the file.
type Row struct {
	// Raw is the row's bytes in the file, its line terminator included (none for a last row
	// the file ends without one). Valid until the next call to Next.
	Raw []byte
	// Key is the value of the field asked for, unescaped and without its enclosure; valid
	// until the next call to Next.
	Key []byte
	// KeyNull says the field reads as NULL (\N, or an unenclosed NULL with ENCLOSED BY set).
	KeyNull bool
	// KeyMissing says the row ended before the field.
	KeyMissing bool
	// Line is the row's number among the rows read (1 for the first row after the ignored
	// lines).
	Line int64
}

const none = -1 // GET's end of file, and "no such character"

// Reader splits a file into rows. It is not safe for concurrent use.
type Reader struct {
	fieldTerm, lineTerm, lineStart []byte
	enclosed, escape               int
	src                            Source
	max                            int

	chunk   []byte
	pos     int
	srcDone bool // the source ended (or failed)
	err     error
	stack   []int  // pushed-back characters, most recent last
	raw     []byte // bytes taken from the source since the current row began
	lines   int64

	// READ_INFO's state.
	data                       []byte
	from                       int    // where the field starts in data (after its enclosure)
	key                        []byte // the key field of the current row
	stopped                    bool   // a row grew too long: reading stopped
	foundEOL, eof, startOfLine bool
	foundNull, enclosedField   bool
}

// NewReader reads src laid out as f (which must pass Check), bounding a row to max bytes.
func NewReader(f Format, src Source, max int) *Reader {
	r := &Reader{
		fieldTerm: []byte(f.FieldTerm), lineTerm: []byte(f.LineTerm), lineStart: []byte(f.LineStart),
		enclosed: none, escape: none, src: src, max: max,
	}
	if f.Enclosed != "" {
		r.enclosed = int(f.Enclosed[0])
	}
	if f.Escaped != "" {
		r.escape = int(f.Escaped[0])
	}
	// MariaDB: "If field_terminator == line_terminator, don't use line_terminator"; Check
	// refuses that layout, so lineTerm stays.
	r.startOfLine = len(r.lineStart) != 0
	return r
}

// Rows counts the rows read so far.
func (r *Reader) Rows() int64 { return r.lines }

// Done reports whether the source has ended (or failed): a caller that stops early reads
// the rest of the file itself.
func (r *Reader) Done() bool { return r.srcDone }

// get is READ_INFO's GET: a pushed-back character, else the source's next byte, else none.
func (r *Reader) get() int {
	if r.stopped {
		return none
	}
	if n := len(r.stack); n > 0 {
		c := r.stack[n-1]
		r.stack = r.stack[:n-1]
		return c
	}
	for r.pos >= len(r.chunk) {
		if r.srcDone || r.stopped {
			return none
		}
		c, err := r.src()
		if err != nil || len(c) == 0 {
			r.srcDone, r.err = true, err
			return none
		}
		r.chunk, r.pos = c, 0
	}
	c := r.chunk[r.pos]
	r.pos++
	if len(r.raw) >= r.max && r.err == nil {
		r.err, r.stopped = ErrRowTooLong, true // the caller drains what is left
		return none
	}
	r.raw = append(r.raw, c)
	return int(c)
}

func (r *Reader) push(c int) { r.stack = append(r.stack, c) }

// terminator is READ_INFO::terminator: the first byte of t was read and matched; it reads
// the rest, and on a mismatch pushes back what it read.
func (r *Reader) terminator(t []byte) bool {
	var c int
	i := 1
	for ; i < len(t); i++ {
		if c = r.get(); c != int(t[i]) {
			break
		}
	}
	if i == len(t) {
		return true
	}
	r.push(c)
	for i--; i >= 1; i-- {
		r.push(int(t[i]))
	}
	return false
}

// terminatorAt is terminator(chr, str): c starts t and the rest follows.
func (r *Reader) terminatorAt(c int, t []byte) bool {
	return len(t) > 0 && c == int(t[0]) && r.terminator(t)
}

func initial(t []byte) int {
	if len(t) == 0 {
		return none
	}
	return int(t[0])
}
