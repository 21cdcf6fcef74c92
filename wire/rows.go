package wire

import "github.com/go-mysql-org/go-mysql/mysql"

// MaxColumns bounds the column count of a result set the proxy accepts from a backend
// (COM_STMT_PREPARE's answer counts columns in 16 bits; MariaDB allows far fewer).
const MaxColumns = 1<<16 - 1

// CheckTextRow reports whether p is a text-protocol row of exactly ncols values: each a
// NULL (0xfb) or a length-encoded string that fits in p, with nothing left over.
func CheckTextRow(p []byte, ncols int) bool {
	for range ncols {
		_, _, n := LenencString(p)
		if n == 0 {
			return false
		}
		p = p[n:]
	}
	return len(p) == 0
}

// CheckBinaryRow reports whether p is a binary-protocol row for columns of the given types
// (MYSQL_TYPE_*): the 0x00 header, the NULL bitmap, and each non-NULL value whole, with
// nothing left over.
func CheckBinaryRow(p []byte, types []byte) bool {
	nb := (len(types) + 7 + 2) / 8
	if len(p) < 1+nb || p[0] != OKHeader {
		return false
	}
	nulls := p[1 : 1+nb]
	p = p[1+nb:]
	for i, t := range types {
		if nulls[(i+2)/8]&(1<<((i+2)%8)) != 0 {
			continue
		}
		n, ok := BinaryValueSize(t, p)
		if !ok {
			return false
		}
		p = p[n:]
	}
	return len(p) == 0
}

// BinaryValueSize returns how many bytes at the start of b the binary-protocol value of type
// t takes, and false when b is too short for it.
func BinaryValueSize(t byte, b []byte) (int, bool) {
	var size int
	switch t {
	case mysql.MYSQL_TYPE_NULL:
		size = 0
	case mysql.MYSQL_TYPE_TINY:
		size = 1
	case mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_YEAR:
		size = 2
	case mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_FLOAT:
		size = 4
	case mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_DOUBLE:
		size = 8
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIME,
		mysql.MYSQL_TYPE_NEWDATE, mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIME2:
		if len(b) < 1 {
			return 0, false
		}
		size = 1 + int(b[0])
	default:
		_, _, n := LenencString(b)
		if n == 0 {
			return 0, false
		}
		size = n
	}
	return size, len(b) >= size
}
