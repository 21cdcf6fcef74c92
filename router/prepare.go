package router

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Stmt is a statement prepared by a session. The backend side is prepared lazily on each
// backend connection that executes it and cached there by SQL text.
type Stmt struct {
	orig       string // the client's text
	text       string // the text the proxy plans: orig without a RETURNING clause
	returning  string // MariaDB's RETURNING clause cut from orig ("" for none), see returning.go
	sql        string // the text prepared on backends
	shard      *rules.Shard
	sticky     bool
	write      bool            // changes rows: subject to the one-writing-shard rule of transactions
	readOnly   bool            // commits no GTID of its own (readsplit.go)
	replicaOK  bool            // a read a replica may serve under a read/write split (readsplit.go)
	rows       rowsKind        // how CLIENT_FOUND_ROWS counts its affected rows (foundrows.go)
	txnControl bool            // BEGIN, COMMIT, ROLLBACK or a savepoint statement: run as text
	hint       hintDeadline    // MAX_EXECUTION_TIME hint
	exempt     bool            // runs without a deadline (see deadline.go)
	local      *ast.ShowStmt   // answered by the proxy (SHOW DATABASES), not a backend
	dynamic    bool            // re-planned at each execute (routed by parameters, or session values)
	snap       *rules.Snapshot // planned against this snapshot; re-planned after a reload
	params     int
	paramDefs  [][]byte
	colDefs    [][]byte
	columns    colNames // logical names for the column definitions of its results
}

// NumParams is the number of ? placeholders.
func (st *Stmt) NumParams() int { return st.params }

// ParamDefs are the parameter definitions the backend described.
func (st *Stmt) ParamDefs() [][]byte { return st.paramDefs }

// ColumnDefs are the result column definitions the backend described.
func (st *Stmt) ColumnDefs() [][]byte { return st.colDefs }

// Prepare parses and plans sql and prepares it on its shard to learn its metadata.
func (s *Session) Prepare(ctx context.Context, sql string) (*Stmt, error) {
	snap := s.r.rules.Load()
	sql, err := s.readableText(sql)
	if err != nil {
		return nil, err
	}
	stmts, _, err := s.parser.Parse(sql, "", "")
	if gerr := s.checkGrammar(nil, err); gerr != nil { // no SET is prepared anyway
		return nil, gerr
	}
	var st ast.StmtNode
	text, clause := sql, ""
	if err != nil {
		var ok bool
		if st, text, clause, ok = s.returningStmt(sql); !ok {
			return nil, refuseUnparsed(sql, syntaxError(err))
		}
		if err := s.checkReturning(snap, clause); err != nil {
			return nil, err
		}
	} else if st, err = oneStmt(stmts); err != nil {
		return nil, err
	}
	switch n := st.(type) {
	case *ast.ShowStmt:
		if n.Tp == ast.ShowDatabases {
			res, err := s.showDatabases(snap, n)
			if err != nil {
				return nil, err
			}
			stmt := &Stmt{orig: sql, local: n}
			for _, c := range res.cols {
				stmt.colDefs = append(stmt.colDefs, wire.AppendColumnDef(nil, c))
			}
			return stmt, nil
		}
	case *ast.UseStmt, *ast.KillStmt, *ast.PrepareStmt, *ast.ExecuteStmt, *ast.DeallocateStmt:
		return nil, sqlerr.New(sqlerr.ErUnsupportedPS, "This command is not supported in the prepared statement protocol yet")
	case *ast.SetStmt:
		return nil, sqlerr.NotSupported("SET as a prepared statement (send it as a plain query so the proxy can track it)")
	case *ast.BeginStmt, *ast.CommitStmt, *ast.RollbackStmt, *ast.SavepointStmt, *ast.ReleaseSavepointStmt:
		// They act on every shard of the transaction (txn.go): EXECUTE runs them as text,
		// whose answer, an OK packet, is the same in both protocols.
		return &Stmt{orig: sql, text: sql, txnControl: true, exempt: true}, nil
	}
	s.describing = true
	p, err := s.plan(snap, st, text, nil)
	s.describing = false
	if errors.Is(err, errNestedUnpinned) {
		err = preparedSubqueries(err) // subquery_bind.go
	}
	if err == nil {
		p, err = withReturning(p, clause)
	}
	if err != nil {
		return nil, err
	}
	c, err := s.acquire(ctx, snap, p.shard)
	if err != nil {
		return nil, err
	}
	stop := watch(ctx, c)
	var k collector
	bs, err := prepareOn(ctx, c, p.sql, &k)
	if stop() {
		_ = s.killQuery(p.shard, c, killReason(ctx))
	}
	if err = s.finish(p.shard, c, outcome{status: s.status}, err); err != nil {
		return nil, err
	}
	stmt := &Stmt{orig: sql, text: text, returning: clause, sql: p.sql, shard: p.shard, sticky: p.sticky, snap: snap, dynamic: p.dynamic || !p.names.empty() || p.branches != nil, write: isWrite(st), readOnly: readsOnly(st), replicaOK: replicaSafeStmt(st, text), params: bs.Params,
		hint: statementHint(st), exempt: exempt(st)}
	stmt.paramDefs = k.pkts[:bs.Params]
	stmt.colDefs = k.pkts[bs.Params:]
	stmt.columns, stmt.rows = p.columns, rowsKindOf(st)
	for i, d := range stmt.colDefs {
		stmt.colDefs[i] = p.columns.rewrite(d)
	}
	return stmt, nil
}

func (s *Session) parseOne(sql string) (ast.StmtNode, error) {
	stmts, err := s.parse(sql)
	if err != nil {
		return nil, err
	}
	return oneStmt(stmts)
}

// oneStmt checks that a prepared statement's text held exactly one statement.
func oneStmt(stmts []ast.StmtNode) (ast.StmtNode, error) {
	switch len(stmts) {
	case 0:
		return nil, sqlerr.New(sqlerr.ErEmptyQuery, "Query was empty")
	case 1:
		return stmts[0], nil
	}
	return nil, sqlerr.New(sqlerr.ErParse, "You have an error in your SQL syntax: a prepared statement holds exactly one statement")
}

// prepareOn prepares sql on c and collects its parameter and column definitions in k.
func prepareOn(ctx context.Context, c Conn, sql string, k *collector) (BackendStmt, error) {
	if err := sendCommand(ctx, c, comStmtPrepare, []byte(sql)); err != nil {
		return BackendStmt{}, err
	}
	bw := c.Wire()
	p, err := bw.ReadPacket()
	if err != nil {
		return BackendStmt{}, ioErr(ctx, c, err)
	}
	if wire.IsErr(p) {
		return BackendStmt{}, wire.ParseErr(p)
	}
	if len(p) < 12 || p[0] != wire.OKHeader {
		return BackendStmt{}, ioErr(ctx, c, wire.ErrMalformed)
	}
	bs := BackendStmt{
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
				return BackendStmt{}, ioErr(ctx, c, err)
			}
			if i == n && !wire.IsEOF(d) {
				return BackendStmt{}, malformed(c, "no EOF after the definitions of a prepared statement")
			}
			if _, ok := parseColDef(d); i < n && !ok {
				return BackendStmt{}, malformed(c, "a malformed definition in a prepared statement's answer")
			}
			if i < n && k != nil {
				_ = k.WritePacket(d)
			}
		}
	}
	c.SetStmt(stmtKey(c, sql), bs)
	return bs, nil
}

// stmtKey names a statement in a backend connection's cache: the same text prepared under
// another current database or other session variables (sql_mode, character set) is another
// statement, since the server resolved its tables and literals when it prepared it.
func stmtKey(c Conn, sql string) string {
	return c.DB() + "\x00" + c.Vars()[""] + "\x00" + sql
}

// CloseStmt forgets a statement. Backend connections keep their prepared copy in a bounded
// cache, so a statement prepared again by any session is reused.
func (s *Session) CloseStmt(*Stmt) {}

// Execute runs a prepared statement on its shard, under its deadline; the binary result is
// relayed as is.
func (s *Session) Execute(ctx context.Context, st *Stmt, params []wire.Param, w wire.PacketWriter) error {
	s.route = RouteSingle
	if st.local != nil {
		s.route = RouteLocal
	}
	s.publish(st.orig)
	defer s.publish("")
	if st.exempt {
		return s.execute(ctx, st, params, w)
	}
	return s.withDeadline(ctx, s.r.rules.Load(), st.hint, func(ctx context.Context) error {
		return s.execute(ctx, st, params, w)
	})
}

func (s *Session) execute(ctx context.Context, st *Stmt, params []wire.Param, w wire.PacketWriter) error {
	if len(params) != st.params {
		return sqlerr.New(sqlerr.ErWrongArguments, "Incorrect arguments to mysqld_stmt_execute")
	}
	snap := s.r.rules.Load()
	if st.txnControl {
		return s.Query(ctx, st.orig, false, w)
	}
	if st.local != nil {
		res, err := s.showDatabases(snap, st.local)
		if err != nil {
			return err
		}
		return res.write(w, s.status, true)
	}
	sql, shard, diagnostic, names := st.sql, st.shard, false, schemaNames{}
	if st.dynamic || (st.snap != nil && st.snap != snap) { // a reload may have moved its rows
		node, err := s.parseOne(st.text)
		if err != nil {
			return err
		}
		p, err := s.plan(snap, node, st.text, params)
		if err == nil && st.returning != "" {
			p, err = withReturning(p, st.returning)
		}
		if err != nil {
			return err
		}
		if !p.columns.empty() {
			w = &logicalColumns{w: w, names: p.columns}
		}
		if p.scatter != nil {
			s.route = RouteScatter
			return s.executeScatter(ctx, snap, st, params, w)
		}
		if p.branches != nil {
			s.forgetGTIDs(snap, p.branches)
			s.route = RouteMultiWrite
			s.branchRows = st.rows
			defer func() { s.branchRows = rowsPlain }()
			return s.execMulti(ctx, snap, p, false, w)
		}
		sql, shard, diagnostic, names = p.sql, p.shard, p.diagnostic, p.names
	} else if !st.columns.empty() {
		w = &logicalColumns{w: w, names: st.columns}
	}
	if !names.empty() {
		params = names.physicalParams(params)
		w = &logicalRows{w: w, names: names, binary: true}
	}
	if st.sticky {
		s.sticky = true
	}
	if st.write {
		if err := s.checkWrite(ctx, shard); err != nil {
			return err
		}
	}
	s.readOnlyStmt = st.readOnly
	s.replicaRead = s.preparedSplit(snap, st.replicaOK)
	defer func() { s.readOnlyStmt, s.replicaRead = false, rules.ReadSplit{} }()
	err := s.runFoundRows(st.rows, w, func(w wire.PacketWriter) error {
		return s.executeOn(ctx, snap, shard, sql, params, diagnostic, w)
	})
	if st.write {
		return lostWrite(err)
	}
	return err
}

// executeOn executes sql, prepared on shard's connection if it is not yet, with params.
func (s *Session) executeOn(ctx context.Context, snap *rules.Snapshot, shard *rules.Shard, sql string, params []wire.Param, diagnostic bool, w wire.PacketWriter) error {
	c, err := s.acquire(ctx, snap, shard)
	if err != nil {
		return err
	}
	bs, ok := c.Stmt(stmtKey(c, sql))
	if !ok {
		stop := watch(ctx, c)
		bs, err = prepareOn(ctx, c, sql, nil)
		if stop() {
			_ = s.killQuery(shard, c, killReason(ctx))
		}
	}
	var out outcome
	if err == nil {
		if bs.Params != len(params) {
			err = sqlerr.New(sqlerr.ErWrongArguments, "Incorrect arguments to mysqld_stmt_execute: the statement changed on the backend")
		} else {
			out, err = s.relayOn(ctx, shard, c, comStmtExecute, executePayload(bs.ID, params), false, w)
		}
	}
	s.keepDiag = diagnostic
	s.record(ctx, c, out, err)
	s.keepDiag = false
	s.trackGTID(ctx, shard, c, err)
	return s.finish(shard, c, out, err)
}

// executePayload encodes COM_STMT_EXECUTE's body (after the command byte), always sending
// the parameter types, with no cursor.
func executePayload(id uint32, params []wire.Param) []byte {
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
