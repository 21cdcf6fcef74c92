package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/wire"
)

// Row encodings for results the proxy builds from merged values (given in text form).

// AppendTextRow encodes a text-protocol row (nil values as NULL).
func AppendTextRow(b []byte, vals [][]byte) []byte {
	for _, v := range vals {
		if v == nil {
			b = append(b, 0xfb)
			continue
		}
		b = wire.AppendLenencInt(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

// AppendBinaryRow encodes a row given in text form as a binary-protocol row.
func AppendBinaryRow(b []byte, cols []wire.ColDef, vals [][]byte) ([]byte, error) {
	b = wire.AppendBinaryRowHeader(b, len(vals), func(i int) bool { return vals[i] == nil })
	for i, v := range vals {
		if v == nil {
			continue
		}
		var err error
		if b, err = appendBinaryValue(b, cols[i], v); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func appendBinaryValue(b []byte, c wire.ColDef, v []byte) ([]byte, error) {
	s := string(v)
	unsigned := c.Flags&mysql.UNSIGNED_FLAG != 0
	intBytes := func(size int) ([]byte, error) {
		var u uint64
		if unsigned {
			x, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("router: integer column value %q: %w", s, err)
			}
			u = x
		} else {
			x, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("router: integer column value %q: %w", s, err)
			}
			u = uint64(x)
		}
		for i := range size {
			b = append(b, byte(u>>(8*i)))
		}
		return b, nil
	}
	switch c.Type {
	case mysql.MYSQL_TYPE_TINY:
		return intBytes(1)
	case mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_YEAR:
		return intBytes(2)
	case mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_INT24:
		return intBytes(4)
	case mysql.MYSQL_TYPE_LONGLONG:
		return intBytes(8)
	case mysql.MYSQL_TYPE_FLOAT:
		f, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return nil, fmt.Errorf("router: float column value %q: %w", s, err)
		}
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(f))), nil
	case mysql.MYSQL_TYPE_DOUBLE:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("router: double column value %q: %w", s, err)
		}
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(f)), nil
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIMESTAMP:
		return appendBinaryDateTime(b, s), nil
	case mysql.MYSQL_TYPE_TIME:
		return appendBinaryTime(b, s), nil
	}
	b = wire.AppendLenencInt(b, uint64(len(v)))
	return append(b, v...), nil
}

// appendBinaryDateTime encodes "YYYY-MM-DD[ hh:mm:ss[.ffffff]]" in the binary protocol's
// shortest form.
func appendBinaryDateTime(b []byte, s string) []byte {
	var y, mo, d, h, mi, sec, us int
	date, clock, _ := strings.Cut(s, " ")
	fmt.Sscanf(date, "%d-%d-%d", &y, &mo, &d)
	if clock != "" {
		hms, frac, _ := strings.Cut(clock, ".")
		fmt.Sscanf(hms, "%d:%d:%d", &h, &mi, &sec)
		if frac != "" {
			us, _ = strconv.Atoi((frac + "000000")[:6])
		}
	}
	size := byte(11)
	switch {
	case us != 0:
	case h != 0 || mi != 0 || sec != 0:
		size = 7
	case y != 0 || mo != 0 || d != 0:
		size = 4
	default:
		return append(b, 0)
	}
	b = append(b, size)
	b = binary.LittleEndian.AppendUint16(b, uint16(y))
	b = append(b, byte(mo), byte(d))
	if size == 4 {
		return b
	}
	b = append(b, byte(h), byte(mi), byte(sec))
	if size == 7 {
		return b
	}
	return binary.LittleEndian.AppendUint32(b, uint32(us))
}

// appendBinaryTime encodes "[-]hhh:mm:ss[.ffffff]".
func appendBinaryTime(b []byte, s string) []byte {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	hms, frac, _ := strings.Cut(s, ".")
	var h, mi, sec, us int
	fmt.Sscanf(hms, "%d:%d:%d", &h, &mi, &sec)
	if frac != "" {
		us, _ = strconv.Atoi((frac + "000000")[:6])
	}
	if h == 0 && mi == 0 && sec == 0 && us == 0 {
		return append(b, 0)
	}
	size := byte(8)
	if us != 0 {
		size = 12
	}
	b = append(b, size)
	if neg {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(h/24))
	b = append(b, byte(h%24), byte(mi), byte(sec))
	if us != 0 {
		b = binary.LittleEndian.AppendUint32(b, uint32(us))
	}
	return b
}
