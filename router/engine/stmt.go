package engine

import (
	"context"
	"encoding/binary"

	"github.com/shardproxy/shardproxy/wire"
)

// Prepare prepares sql on c (COM_STMT_PREPARE), caches it on c under StmtKey and collects
// its parameter and column definitions in k (nil: drops them). Statements the cache drops
// for it (the least recently used beyond wire.MaxStmts, or an earlier one under the same
// key) are closed on the backend.
func Prepare(ctx context.Context, c Conn, sql string, k *Collector) (Stmt, error) {
	if err := SendCommand(ctx, c, ComStmtPrepare, []byte(sql)); err != nil {
		return Stmt{}, err
	}
	bw := c.Wire()
	p, err := bw.ReadPacket()
	if err != nil {
		return Stmt{}, IOErr(ctx, c, err)
	}
	if wire.IsErr(p) {
		return Stmt{}, wire.ParseErr(p)
	}
	if len(p) < 12 || p[0] != wire.OKHeader {
		return Stmt{}, IOErr(ctx, c, wire.ErrMalformed)
	}
	bs := Stmt{
		ID:      binary.LittleEndian.Uint32(p[1:]),
		Columns: int(binary.LittleEndian.Uint16(p[5:])),
		Params:  int(binary.LittleEndian.Uint16(p[7:])),
	}
	for _, n := range []int{bs.Params, bs.Columns} {
		if n == 0 {
			continue
		}
		for i := 0; i <= n; i++ { // n definitions and an EOF
			d, err := bw.ReadPacket()
			if err != nil {
				return Stmt{}, IOErr(ctx, c, err)
			}
			if i == n && !wire.IsEOF(d) {
				return Stmt{}, Malformed(c, "no EOF after the definitions of a prepared statement")
			}
			if _, ok := wire.ParseColDef(d); i < n && !ok {
				return Stmt{}, Malformed(c, "a Malformed definition in a prepared statement's answer")
			}
			if i < n && k != nil {
				_ = k.WritePacket(d)
			}
		}
	}
	for _, old := range c.State().PutStmt(StmtKey(c, sql), bs) {
		closeStmt(c, old.ID)
	}
	return bs, nil
}

// closeStmt sends COM_STMT_CLOSE for a statement no longer cached on c (it has no
// response); a failed write marks c broken.
func closeStmt(c Conn, id uint32) {
	if c.State().Broken() {
		return
	}
	w := c.Wire()
	w.ResetSeq()
	if w.WritePacket(binary.LittleEndian.AppendUint32([]byte{ComStmtClose}, id)) != nil || w.Flush() != nil {
		c.State().MarkBroken()
	}
}

// StmtKey names a statement in a backend connection's cache: the same text prepared under
// another current database or other session variables (sql_mode, character set) is another
// statement, since the server resolved its tables and literals when it prepared it.
func StmtKey(c Conn, sql string) string {
	st := c.State()
	return st.DB() + "\x00" + st.Vars()[""] + "\x00" + sql
}

// ExecutePayload encodes COM_STMT_EXECUTE's body (after the command byte), always sending
// the parameter types, with no cursor.
func ExecutePayload(id uint32, params []wire.Param) []byte {
	n := 9
	for _, p := range params {
		n += 2 + len(p.Value)
	}
	b := make([]byte, 0, n+len(params)/8+2)
	b = binary.LittleEndian.AppendUint32(b, id)
	b = append(b, 0)                           // CURSOR_TYPE_NO_CURSOR
	b = binary.LittleEndian.AppendUint32(b, 1) // iteration count
	if len(params) == 0 {
		return b
	}
	nulls := make([]byte, (len(params)+7)/8)
	for i, p := range params {
		if p.Null {
			nulls[i/8] |= 1 << (i % 8)
		}
	}
	b = append(b, nulls...)
	b = append(b, 1) // new_params_bound_flag
	for _, p := range params {
		flag := byte(0)
		if p.Unsigned {
			flag = 0x80
		}
		b = append(b, p.Type, flag)
	}
	for _, p := range params {
		if !p.Null {
			b = append(b, p.Value...)
		}
	}
	return b
}
