package protocol

import (
	"context"
	"encoding/binary"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// maxStmts bounds the prepared statements one connection may hold (max_prepared_stmt_count
// is per server in MySQL; this keeps one client from holding unbounded memory).
const maxStmts = 16382

// clientStmt is a prepared statement as the client sees it.
type clientStmt struct {
	prep     Prepared
	types    []byte        // 2 bytes per parameter, from the last execute that sent them
	longData [][]byte      // COM_STMT_SEND_LONG_DATA chunks per parameter, until execute or reset
	longErr  *sqlerr.Error // a parameter's long data grew past max_allowed_packet: the next execute fails
}

// stmtTable holds a connection's prepared statements by client statement id.
type stmtTable struct {
	next uint32
	m    map[uint32]*clientStmt
}

func (t *stmtTable) add(p Prepared) (uint32, error) {
	if t.m == nil {
		t.m = make(map[uint32]*clientStmt)
	}
	if len(t.m) >= maxStmts {
		return 0, sqlerr.New(1461, "Can't create more than max_prepared_stmt_count statements (current value: %d)", maxStmts)
	}
	t.next++
	t.m[t.next] = &clientStmt{prep: p}
	return t.next, nil
}

func (t *stmtTable) get(data []byte) (*clientStmt, uint32, error) {
	if len(data) < 4 {
		return nil, 0, sqlerr.New(sqlerr.ErMalformedPacket, "Malformed communication packet")
	}
	id := binary.LittleEndian.Uint32(data)
	s, ok := t.m[id]
	if !ok {
		return nil, id, sqlerr.New(sqlerr.ErUnknownStmtHandler, "Unknown prepared statement handler (%d) given to mysqld_stmt_execute", id)
	}
	return s, id, nil
}

func (t *stmtTable) close(data []byte, sess Session) {
	s, id, err := t.get(data)
	if err != nil {
		return
	}
	delete(t.m, id)
	sess.CloseStmt(s.prep)
}

func (t *stmtTable) reset(sess Session) {
	for id, s := range t.m {
		sess.CloseStmt(s.prep)
		delete(t.m, id)
	}
}

func (t *stmtTable) resetStmt(data []byte) error {
	s, _, err := t.get(data)
	if err != nil {
		return err
	}
	s.longData, s.longErr = nil, nil
	return nil
}

// longData appends a COM_STMT_SEND_LONG_DATA chunk: stmt id (4), param id (2), data. A
// parameter's data may total at most maxPacket bytes; beyond that it is dropped and the
// next execute fails, as in MySQL (the command itself has no response).
func (t *stmtTable) longData(data []byte, maxPacket int) {
	s, _, err := t.get(data)
	if err != nil || len(data) < 6 {
		return
	}
	i := int(binary.LittleEndian.Uint16(data[4:]))
	n := s.prep.NumParams()
	if i >= n {
		return
	}
	if s.longData == nil {
		s.longData = make([][]byte, n)
	}
	if s.longErr != nil {
		return
	}
	if len(s.longData[i])+len(data)-6 > maxPacket {
		s.longData = nil
		s.longErr = sqlerr.New(sqlerr.ErUnknownError,
			"Parameter of prepared statement which is set through mysql_send_long_data() is longer than 'max_allowed_packet' bytes")
		return
	}
	if s.longData[i] == nil {
		s.longData[i] = []byte{}
	}
	s.longData[i] = append(s.longData[i], data[6:]...)
}

// prepare answers COM_STMT_PREPARE with the statement's id and its parameter and column
// definitions.
func (c *conn) prepare(ctx context.Context, sql string) error {
	p, err := c.sess.Prepare(ctx, sql)
	if err != nil {
		return err
	}
	id, err := c.stmts.add(p)
	if err != nil {
		c.sess.CloseStmt(p)
		return err
	}
	params, cols := p.ParamDefs(), p.ColumnDefs()
	b := make([]byte, 0, 12)
	b = append(b, wire.OKHeader)
	b = binary.LittleEndian.AppendUint32(b, id)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(cols)))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(params)))
	b = append(b, 0, 0, 0)
	if err := c.w.WritePacket(b); err != nil {
		return err
	}
	status := c.sess.Status()
	for _, defs := range [][][]byte{params, cols} {
		if len(defs) == 0 {
			continue
		}
		for _, d := range defs {
			if err := c.w.WritePacket(d); err != nil {
				return err
			}
		}
		if err := c.w.WritePacket(wire.AppendEOF(nil, 0, status)); err != nil {
			return err
		}
	}
	return nil
}

// execute decodes COM_STMT_EXECUTE, filling in types remembered from an earlier execute
// and values sent as long data, and runs the statement.
func (c *conn) execute(ctx context.Context, data []byte) error {
	s, _, err := c.stmts.get(data)
	if err != nil {
		return err
	}
	malformed := sqlerr.New(sqlerr.ErMalformedPacket, "Malformed communication packet")
	if len(data) < 9 {
		return malformed
	}
	cursor := data[4] != 0
	if lerr := s.longErr; lerr != nil {
		s.longData, s.longErr = nil, nil
		return lerr
	}
	params, err := s.decodeParams(data[9:])
	s.longData = nil // long data is consumed by the execute, whatever its outcome
	if err != nil {
		return err
	}
	return c.sess.Execute(ctx, s.prep, params, cursor, &c.out)
}

func (s *clientStmt) decodeParams(b []byte) ([]Param, error) {
	n := s.prep.NumParams()
	if n == 0 {
		return nil, nil
	}
	malformed := sqlerr.New(sqlerr.ErMalformedPacket, "Malformed communication packet")
	nb := (n + 7) / 8
	if len(b) < nb+1 {
		return nil, malformed
	}
	nulls, bound := b[:nb], b[nb]
	b = b[nb+1:]
	if bound == 1 {
		if len(b) < 2*n {
			return nil, malformed
		}
		s.types = append(s.types[:0], b[:2*n]...)
		b = b[2*n:]
	} else if s.types == nil {
		return nil, sqlerr.New(sqlerr.ErWrongArguments, "Incorrect arguments to mysqld_stmt_execute: no parameter types were ever sent")
	}
	params := make([]Param, n)
	for i := range params {
		p := &params[i]
		p.Type, p.Unsigned = s.types[2*i], s.types[2*i+1]&0x80 != 0
		if s.longData != nil && s.longData[i] != nil {
			p.Value = wire.AppendLenencString(nil, string(s.longData[i]))
			if !isStringType(p.Type) {
				p.Type = mysql.MYSQL_TYPE_BLOB
			}
			continue
		}
		if nulls[i/8]&(1<<(i%8)) != 0 || p.Type == mysql.MYSQL_TYPE_NULL {
			p.Null = true
			continue
		}
		size, ok := binaryValueSize(p.Type, b)
		if !ok {
			return nil, malformed
		}
		p.Value = append([]byte(nil), b[:size]...)
		b = b[size:]
	}
	return params, nil
}

func isStringType(t byte) bool {
	switch t {
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_STRING,
		mysql.MYSQL_TYPE_TINY_BLOB, mysql.MYSQL_TYPE_MEDIUM_BLOB, mysql.MYSQL_TYPE_LONG_BLOB,
		mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_JSON:
		return true
	}
	return false
}

// binaryValueSize returns how many bytes of b the binary-protocol value of type t takes.
func binaryValueSize(t byte, b []byte) (int, bool) { return wire.BinaryValueSize(t, b) }
