package infile

// The functions of this file follow sql_load.cc's READ_INFO (read_field, next_line,
// find_start_of_fields, unescape) step by step, byte by byte; Format.Check keeps out the
// layouts where MariaDB's multi-byte handling would read differently.

// readField reads the next field into r.data; true means there was none (the line or the
// file had ended).
func (r *Reader) readField() bool {
	r.foundNull = false
	if r.foundEOL {
		return true
	}
	if r.startOfLine {
		r.startOfLine = false
		if r.findStartOfFields() {
			return true
		}
	}
	c := r.get()
	if c == none {
		r.foundEOL, r.eof = true, true
		return true
	}
	r.data, r.from = r.data[:0], 0
	foundEnclosed := none
	if c == r.enclosed {
		foundEnclosed = r.enclosed
		r.data = append(r.data, byte(c))
	} else {
		r.push(c)
	}
	for {
		c = r.get()
		if c == none {
			return r.fieldAtEOF()
		}
		if c == r.escape {
			if c = r.get(); c == none {
				r.data = append(r.data, byte(r.escape))
				return r.fieldAtEOF()
			}
			// escape == enclosure: a doubled one is the character itself, else the escape
			// reads as the enclosure.
			if r.escape != r.enclosed || c == r.escape {
				r.data = append(r.data, r.unescape(byte(c)))
				continue
			}
			r.push(c)
			c = r.escape
		}
		if c == initial(r.lineTerm) && foundEnclosed == none && r.terminator(r.lineTerm) {
			r.enclosedField, r.foundEOL = false, true
			return false
		}
		if c == foundEnclosed {
			if c = r.get(); c == foundEnclosed {
				r.data = append(r.data, byte(c))
				continue
			}
			if c == none || r.terminatorAt(c, r.lineTerm) {
				r.enclosedField, r.foundEOL, r.from = true, true, 1
				return false
			}
			if r.terminatorAt(c, r.fieldTerm) {
				r.enclosedField, r.from = true, 1
				return false
			}
			r.push(c)
			c = foundEnclosed
		} else if c == initial(r.fieldTerm) && foundEnclosed == none && r.terminator(r.fieldTerm) {
			r.enclosedField = false
			return false
		}
		r.data = append(r.data, byte(c))
	}
}

// fieldAtEOF ends a field at the end of the file.
func (r *Reader) fieldAtEOF() bool {
	r.enclosedField, r.foundEOL, r.eof = false, true, true
	return false
}

// unescape is READ_INFO::unescape.
func (r *Reader) unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	case 'b':
		return '\b'
	case '0':
		return 0
	case 'Z':
		return 032
	case 'N':
		r.foundNull = true
	}
	return c
}

// nextLine skips to the start of the next line; true at the end of the file.
func (r *Reader) nextLine() bool {
	r.startOfLine = len(r.lineStart) != 0
	if r.foundEOL || r.eof {
		r.foundEOL = false
		return r.eof
	}
	for {
		c := r.get()
		if c == none {
			r.eof = true
			return true
		}
		if c == r.escape {
			if r.get() == none {
				r.eof = true
				return true
			}
			continue
		}
		if r.terminatorAt(c, r.lineTerm) {
			return false
		}
	}
}

// findStartOfFields skips to just after the line prefix; true at the end of the file.
func (r *Reader) findStartOfFields() bool {
	for c := r.get(); c != none; c = r.get() {
		if r.terminatorAt(c, r.lineStart) {
			return false
		}
	}
	r.foundEOL, r.eof = true, true
	return true
}

// SkipLines skips n lines (IGNORE n LINES); the bytes skipped belong to no row.
func (r *Reader) SkipLines(n uint64) error {
	for ; n > 0; n-- {
		if r.nextLine() {
			break
		}
	}
	r.startRow()
	return r.err
}

// startRow makes the bytes not yet read again the start of the next row's Raw.
func (r *Reader) startRow() {
	r.raw = append(r.raw[:0], r.raw[len(r.raw)-r.pushed():]...)
}

// pushed counts the bytes of the source pushed back and not read again.
func (r *Reader) pushed() int {
	n := 0
	for _, c := range r.stack {
		if c != none {
			n++
		}
	}
	return n
}

// Next reads the next row of a file whose rows have fields fields, returning field key (0
// based) as Row.Key. ok is false at the end of the file; err is the source's error (the
// file is then cut short) or ErrRowTooLong.
func (r *Reader) Next(fields, key int) (row Row, ok bool, err error) {
	r.startRow()
	read := 0
	row.KeyMissing = true
	for ; read < fields; read++ {
		if r.readField() {
			break
		}
		if read == key {
			f := r.data[r.from:]
			r.key = append(r.key[:0], f...)
			row.Key, row.KeyMissing = r.key, false
			row.KeyNull = !r.enclosedField && r.enclosed != none && string(f) == "NULL" || len(f) == 1 && r.foundNull
		}
	}
	if r.err != nil {
		return Row{}, false, r.err
	}
	if read == 0 {
		return Row{}, false, nil
	}
	r.nextLine()
	if r.err != nil {
		return Row{}, false, r.err
	}
	r.lines++
	row.Raw, row.Line = r.raw[:len(r.raw)-r.pushed()], r.lines
	return row, true, nil
}
