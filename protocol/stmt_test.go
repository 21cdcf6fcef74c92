package protocol

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/wire"
)

// MySQL field types (enum_field_types), from the protocol documentation.
const (
	typeTiny      = 0x01
	typeShort     = 0x02
	typeLong      = 0x03
	typeFloat     = 0x04
	typeDouble    = 0x05
	typeNull      = 0x06
	typeTimestamp = 0x07
	typeLongLong  = 0x08
	typeDate      = 0x0a
	typeTime      = 0x0b
	typeDateTime  = 0x0c
	typeYear      = 0x0d
	typeNewDec    = 0xf6
	typeBlob      = 0xfc
	typeVarString = 0xfd
	typeString    = 0xfe
)

// prepare sends COM_STMT_PREPARE and reads the whole answer.
func (c *rawClient) prepare(sql string) (id uint32, params, cols int) {
	c.t.Helper()
	c.cmd(comStmtPrepare, []byte(sql)...)
	p := c.read()
	if len(p) != 12 || p[0] != 0 {
		c.t.Fatalf("COM_STMT_PREPARE answer % x", p)
	}
	id = binary.LittleEndian.Uint32(p[1:])
	cols = int(binary.LittleEndian.Uint16(p[5:]))
	params = int(binary.LittleEndian.Uint16(p[7:]))
	for _, n := range []int{params, cols} {
		for range n {
			c.read()
		}
		if n > 0 {
			if eof := c.read(); !wire.IsEOF(eof) {
				c.t.Fatalf("definitions end with % x, want EOF", eof)
			}
		}
	}
	return id, params, cols
}

// execute builds COM_STMT_EXECUTE's body: id, flags, iteration count 1, and for a statement
// with parameters the NULL bitmap, new_params_bound_flag, types (when bound) and values.
func execute(id uint32, flags byte, nulls []byte, bound bool, types, values []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, id)
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint32(b, 1)
	if nulls == nil {
		return b
	}
	b = append(b, nulls...)
	if bound {
		b = append(b, 1)
		b = append(b, types...)
	} else {
		b = append(b, 0)
	}
	return append(b, values...)
}

func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func id4(id uint32) []byte { return binary.LittleEndian.AppendUint32(nil, id) }

// TestPrepareResponse checks COM_STMT_PREPARE_OK byte for byte: 0x00, statement id,
// column count, parameter count, a reserved 0x00, warning count; then the parameter
// definitions and an EOF, then the column definitions and an EOF.
func TestPrepareResponse(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	c.cmd(comStmtPrepare, []byte("SELECT ?, ?")...)
	if got, want := c.readFrame(), unhex(t, "0c000001 00 01000000 0100 0200 00 0000"); !bytes.Equal(got, want) {
		t.Fatalf("PREPARE_OK % x, want % x", got, want)
	}
	st := &stubStmt{sql: "SELECT ?, ?", params: 2, cols: 1}
	want := [][]byte{
		frameOf(2, st.ParamDefs()[0]),
		frameOf(3, st.ParamDefs()[1]),
		frameOf(4, unhex(t, "fe 0000 0200")),
		frameOf(5, st.ColumnDefs()[0]),
		frameOf(6, unhex(t, "fe 0000 0200")),
	}
	for i, w := range want {
		if got := c.readFrame(); !bytes.Equal(got, w) {
			t.Errorf("packet %d: % x, want % x", i, got, w)
		}
	}
	// No parameters, no columns: the OK packet alone, then the next statement id.
	c.cmd(comStmtPrepare, []byte("DO 1")...)
	if got, want := c.readFrame(), unhex(t, "0c000001 00 02000000 0000 0000 00 0000"); !bytes.Equal(got, want) {
		t.Fatalf("PREPARE_OK % x, want % x", got, want)
	}
	c.ping() // nothing else was sent
	c.cmd(comStmtPrepare, []byte("bad")...)
	c.expectErr(1064, "42000")
	c.ping()
}

func TestExecuteBinaryResult(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	id, _, _ := c.prepare("SELECT 42")
	c.cmd(comStmtExecute, execute(id, 1, nil, false, nil, nil)...) // CURSOR_TYPE_READ_ONLY
	for range 5 {                                                  // count, definition, EOF, row, EOF
		c.read()
	}
	c.ping()
	ex := ts.h.session(t, 0).Execs()
	if len(ex) != 1 || !ex[0].cursor || len(ex[0].params) != 0 {
		t.Errorf("execs %+v", ex)
	}
}

func TestExecuteErrors(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	id, _, _ := c.prepare("INSERT ?, ?")
	types := []byte{typeLongLong, 0, typeVarString, 0}
	cases := []struct {
		name  string
		body  []byte
		code  uint16
		state string
	}{
		{"first execute without types", execute(id, 0, []byte{0}, false, nil, append(le64(1), 1, 'a')), 1210, "HY000"},
		{"no statement id", []byte{1, 0}, 1835, "HY000"},
		{"id only", id4(id), 1835, "HY000"},
		{"no iteration count", append(id4(id), 0, 1, 0), 1835, "HY000"},
		{"unknown statement", execute(999, 0, []byte{0}, true, types, nil), 1243, "HY000"},
		{"no NULL bitmap", execute(id, 0, nil, false, nil, nil), 1835, "HY000"},
		{"types cut short", execute(id, 0, []byte{0}, true, types[:3], nil), 1835, "HY000"},
		{"value cut short", execute(id, 0, []byte{0}, true, types, []byte{1, 2, 3}), 1835, "HY000"},
		{"string value cut short", execute(id, 0, []byte{0}, true, types, append(le64(1), 5, 'a')), 1835, "HY000"},
	}
	for _, tc := range cases { // one connection, in order: no subtests
		t.Log(tc.name)
		c.cmd(comStmtExecute, tc.body...)
		c.expectErr(tc.code, tc.state)
		c.ping()
	}
	if ex := ts.h.session(t, 0).Execs(); len(ex) != 0 {
		t.Errorf("the session executed %d malformed statements", len(ex))
	}
}

// TestExecuteReusesTypes: a client may send new_params_bound_flag = 0 on a re-execution;
// the types of the previous execution apply (libmysqlclient and Connector/J do this).
func TestExecuteReusesTypes(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	id, n, _ := c.prepare("INSERT ?, ?, ?")
	if n != 3 {
		t.Fatalf("%d params", n)
	}
	types := []byte{typeLongLong, 0x80, typeVarString, 0, typeLong, 0}
	vals := append(le64(7), wire.AppendLenencString(nil, "ab")...)
	vals = append(vals, 9, 0, 0, 0)
	c.cmd(comStmtExecute, execute(id, 0, []byte{0}, true, types, vals)...)
	if ok := c.expectOK(); ok.AffectedRows != 3 {
		t.Fatalf("affected %d", ok.AffectedRows)
	}
	// Second execution: no types, the middle parameter NULL (bit 1), so only two values.
	vals = append(le64(8), 10, 0, 0, 0)
	c.cmd(comStmtExecute, execute(id, 0, []byte{0b010}, false, nil, vals)...)
	c.expectOK()

	ex := ts.h.session(t, 0).Execs()
	if len(ex) != 2 {
		t.Fatalf("%d executions", len(ex))
	}
	want := [][]Param{
		{{Type: typeLongLong, Unsigned: true, Value: le64(7)}, {Type: typeVarString, Value: []byte{2, 'a', 'b'}}, {Type: typeLong, Value: []byte{9, 0, 0, 0}}},
		{{Type: typeLongLong, Unsigned: true, Value: le64(8)}, {Type: typeVarString, Null: true}, {Type: typeLong, Value: []byte{10, 0, 0, 0}}},
	}
	for i := range want {
		assertParams(t, i, ex[i].params, want[i])
	}
}

func assertParams(t *testing.T, exec int, got, want []Param) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("execution %d: %d params, want %d", exec, len(got), len(want))
	}
	for j := range want {
		g, w := got[j], want[j]
		if g.Type != w.Type || g.Unsigned != w.Unsigned || g.Null != w.Null || !bytes.Equal(g.Value, w.Value) {
			t.Errorf("execution %d param %d = %+v, want %+v", exec, j, g, w)
		}
	}
}

func TestExecuteValueSizes(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	params := []struct {
		typ byte
		val []byte
	}{
		{typeTiny, []byte{1}},
		{typeShort, []byte{1, 2}},
		{typeYear, []byte{0xe8, 0x07}},
		{typeLong, []byte{1, 2, 3, 4}},
		{typeFloat, []byte{0, 0, 0x80, 0x3f}},
		{typeDouble, le64(3)},
		{typeDate, []byte{4, 0xe8, 0x07, 1, 2}},
		{typeDateTime, []byte{0}},
		{typeTimestamp, []byte{7, 0xe8, 0x07, 1, 2, 3, 4, 5}},
		{typeTime, []byte{8, 0, 1, 0, 0, 0, 2, 3, 4}},
		{typeNewDec, []byte{4, '1', '.', '2', '5'}},
		{typeBlob, []byte{0xfc, 3, 0, 'a', 'b', 'c'}},
		{typeNull, nil},
	}
	sql := "INSERT " + string(bytes.Repeat([]byte("?,"), len(params)))
	id, n, _ := c.prepare(sql)
	if n != len(params) {
		t.Fatalf("%d params", n)
	}
	var types, vals []byte
	var want []Param
	for _, p := range params {
		types = append(types, p.typ, 0)
		vals = append(vals, p.val...)
		want = append(want, Param{Type: p.typ, Value: p.val, Null: p.typ == typeNull})
	}
	c.cmd(comStmtExecute, execute(id, 0, []byte{0, 0}, true, types, vals)...)
	c.expectOK()
	assertParams(t, 0, ts.h.session(t, 0).Execs()[0].params, want)
}

// TestLongData: COM_STMT_SEND_LONG_DATA chunks (no answer) are joined into the parameter's
// value at the next execution, which sends no value for it, and forgotten afterwards.
func TestLongData(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	id, _, _ := c.prepare("INSERT ?, ?")
	longData := func(param uint16, chunk string) {
		body := append(id4(id), byte(param), byte(param>>8))
		c.cmd(comStmtSendLongData, append(body, chunk...)...)
	}
	longData(1, "hello ")
	longData(1, "world")
	longData(7, "ignored: no such parameter")
	c.cmd(comStmtSendLongData, 0xe7, 3, 0, 0, 0, 0, 'x') // unknown statement: no answer either
	c.ping()                                             // no answer was sent to any of them

	types := []byte{typeLongLong, 0, typeString, 0}
	c.cmd(comStmtExecute, execute(id, 0, []byte{0}, true, types, le64(5))...)
	c.expectOK()
	// The long data is gone: this execution sends both values.
	c.cmd(comStmtExecute, execute(id, 0, []byte{0}, false, nil, append(le64(6), 5, 'a', 'g', 'a', 'i', 'n'))...)
	c.expectOK()
	// Long data for an integer parameter arrives as a BLOB.
	longData(0, "12")
	c.cmd(comStmtExecute, execute(id, 0, []byte{0}, false, nil, []byte{0})...)
	c.expectOK()

	ex := ts.h.session(t, 0).Execs()
	if len(ex) != 3 {
		t.Fatalf("%d executions", len(ex))
	}
	hello := wire.AppendLenencString(nil, "hello world")
	assertParams(t, 0, ex[0].params, []Param{{Type: typeLongLong, Value: le64(5)}, {Type: typeString, Value: hello}})
	assertParams(t, 1, ex[1].params, []Param{{Type: typeLongLong, Value: le64(6)}, {Type: typeString, Value: []byte("\x05again")}})
	assertParams(t, 2, ex[2].params, []Param{{Type: typeBlob, Value: []byte("\x0212")}, {Type: typeString, Value: []byte{0}}})
}

func TestStmtReset(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	id, _, _ := c.prepare("INSERT ?")
	types := []byte{typeString, 0}
	c.cmd(comStmtExecute, execute(id, 0, []byte{0}, true, types, []byte{1, 'a'})...)
	c.expectOK()
	c.cmd(comStmtSendLongData, append(id4(id), 0, 0, 'L')...)
	c.cmd(comStmtReset, id4(id)...)
	if got, want := c.readFrame(), unhex(t, "07000001 00 00 00 0200 0000"); !bytes.Equal(got, want) {
		t.Fatalf("COM_STMT_RESET answer % x, want % x", got, want)
	}
	// Long data is gone; the types are kept.
	c.cmd(comStmtExecute, execute(id, 0, []byte{0}, false, nil, []byte{1, 'b'})...)
	c.expectOK()
	c.cmd(comStmtReset, id4(999)...)
	c.expectErr(1243, "HY000")
	c.cmd(comStmtReset, 1)
	c.expectErr(1835, "HY000")
	ex := ts.h.session(t, 0).Execs()
	assertParams(t, 1, ex[1].params, []Param{{Type: typeString, Value: []byte{1, 'b'}}})
}

func TestStmtClose(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	id, _, _ := c.prepare("DO ?")
	c.cmd(comStmtClose, id4(id)...)
	c.cmd(comStmtClose, id4(id)...) // twice: ignored
	c.cmd(comStmtClose, 1)          // malformed: ignored
	c.ping()                        // COM_STMT_CLOSE has no answer
	s := ts.h.session(t, 0)
	if closed := s.ClosedStmts(); len(closed) != 1 || closed[0].sql != "DO ?" {
		t.Errorf("closed statements %v", closed)
	}
	c.cmd(comStmtExecute, execute(id, 0, []byte{0}, true, []byte{typeTiny, 0}, []byte{1})...)
	c.expectErr(1243, "HY000")
}

// TestResetConnectionClosesStatements: COM_RESET_CONNECTION deallocates every prepared
// statement of the connection.
func TestResetConnectionClosesStatements(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	id1, _, _ := c.prepare("DO 1")
	id2, _, _ := c.prepare("DO 2")
	c.cmd(comResetConnection)
	if got, want := c.readFrame(), unhex(t, "07000001 00 00 00 0200 0000"); !bytes.Equal(got, want) {
		t.Fatalf("COM_RESET_CONNECTION answer % x, want % x", got, want)
	}
	s := ts.h.session(t, 0)
	var closed []string
	for _, st := range s.ClosedStmts() {
		closed = append(closed, st.sql)
	}
	if len(closed) != 2 || !(closed[0] == "DO 1" && closed[1] == "DO 2" || closed[0] == "DO 2" && closed[1] == "DO 1") {
		t.Errorf("closed statements %q, want both", closed)
	}
	calls := s.Calls()
	if calls[len(calls)-1] != "Reset" {
		t.Errorf("calls %q: Reset must follow the CloseStmt calls", calls)
	}
	for _, id := range []uint32{id1, id2} {
		c.cmd(comStmtExecute, execute(id, 0, nil, false, nil, nil)...)
		c.expectErr(1243, "HY000")
	}
}

func TestStmtTableLimit(t *testing.T) {
	var tab stmtTable
	st := &stubStmt{}
	for i := range maxStmts {
		id, err := tab.add(st)
		if err != nil || id != uint32(i+1) {
			t.Fatalf("add %d: id %d, %v", i, id, err)
		}
	}
	_, err := tab.add(st)
	if err == nil {
		t.Fatal("add beyond the limit succeeded")
	}
	// ER_MAX_PREPARED_STMT_COUNT_REACHED: 1461, SQLSTATE 42000.
	if se := toSQLError(err); se.Code != 1461 || se.State != "42000" {
		t.Errorf("error %v", err)
	}
}

// TestLongDataBound: a parameter's long data may total max_allowed_packet bytes across its
// chunks; past that the data is dropped and the next execution fails with MySQL's error
// (1105), once; the statement then works again.
func TestLongDataBound(t *testing.T) {
	ts := startServer(t, Options{MaxAllowedPacket: 4096})
	c := loginNative(t, ts.addr)
	id, _, _ := c.prepare("INSERT ?, ?")
	longData := func(param uint16, n int) {
		body := append(id4(id), byte(param), byte(param>>8))
		c.cmd(comStmtSendLongData, append(body, bytes.Repeat([]byte{'z'}, n)...)...)
	}
	types := []byte{typeLongLong, 0, typeString, 0}
	// Exactly max_allowed_packet per parameter, in chunks: accepted.
	longData(0, 2000)
	longData(0, 2096)
	longData(1, 4000)
	c.cmd(comStmtExecute, execute(id, 0, []byte{0}, true, types, nil)...)
	c.expectOK()
	// One byte more, in many chunks that each fit in a packet: refused at execution.
	for range 5 {
		longData(1, 1000)
	}
	c.ping()
	c.cmd(comStmtExecute, execute(id, 0, []byte{0}, false, nil, append(le64(1), 1, 'x'))...)
	if msg := c.expectErr(1105, "HY000"); !strings.Contains(msg, "longer than 'max_allowed_packet'") {
		t.Errorf("message %q", msg)
	}
	c.cmd(comStmtExecute, execute(id, 0, []byte{0}, false, nil, append(le64(2), 1, 'y'))...)
	c.expectOK()
	ex := ts.h.session(t, 0).Execs()
	if len(ex) != 2 {
		t.Fatalf("%d executions reached the session, want 2 (not the refused one)", len(ex))
	}
	if got := ex[0].params[1].Value; len(got) != 4000+3 {
		t.Errorf("first execution: long data of %d bytes", len(got))
	}
}
