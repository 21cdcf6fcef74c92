package router

import (
	"context"
	"errors"
	"slices"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/router/plan"
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
	write      bool                     // changes rows: subject to the one-writing-shard rule of transactions
	readOnly   bool                     // commits no GTID of its own (readsplit.go)
	idRule     insertIDRule             // what its text tells about its OK's insert id (insertid.go)
	replicaOK  bool                     // a read a replica may serve under a read/write split (readsplit.go)
	retryOK    bool                     // a read that may run again after a lost connection (readretry.go)
	rows       rowsKind                 // how CLIENT_FOUND_ROWS counts its affected rows (foundrows.go)
	txnControl bool                     // BEGIN, COMMIT, ROLLBACK or a savepoint statement: run as text
	explain    bool                     // EXPLAIN / ANALYZE of a statement: answered as the plain query (explain_prepared.go)
	hint       hintDeadline             // MAX_EXECUTION_TIME hint
	exempt     bool                     // runs without a deadline (see deadline.go)
	local      *ast.ShowStmt            // answered by the proxy (SHOW DATABASES), not a backend
	dynamic    bool                     // re-planned at each execute (routed by parameters, or session values)
	snap       *rules.Snapshot          // planned against this snapshot; re-planned after a reload
	bound      *planner.BoundRoute      // routed by parameters alone: resolved at each execute, not re-planned
	scatter    *planner.ScatterTemplate // a SELECT its parameters send to several shards: pruned and filled in at each execute
	writes     *planner.WriteRoute      // a multi-shard write its parameters do not change: handed its values at each execute (bound.go)
	kept       *keptTree                // planned at each execution: the tree its values are written into
	params     int
	paramDefs  [][]byte
	colDefs    [][]byte
	columns    introspect.Columns // logical names for the column definitions of its results
}

// NumParams is the number of ? placeholders.
func (st *Stmt) NumParams() int { return st.params }

// ParamDefs are the parameter definitions the backend described.
func (st *Stmt) ParamDefs() [][]byte { return st.paramDefs }

// ColumnDefs are the result column definitions the backend described.
func (st *Stmt) ColumnDefs() [][]byte { return st.colDefs }

// Prepare parses and plans sql and prepares it on its shard to learn its metadata.
func (s *Session) Prepare(ctx context.Context, sql string) (*Stmt, error) {
	seq := s.diag.seq
	st, err := s.prepare(ctx, sql)
	if err != nil {
		s.diag.answered(ctx, false, seq, err) // a refused prepare is the last statement, as on MariaDB
	}
	return st, err
}

func (s *Session) prepare(ctx context.Context, sql string) (*Stmt, error) {
	snap := s.r.rules.Load()
	facts := s.vars.facts()
	sql, err := facts.Text(sql)
	if err != nil {
		return nil, err
	}
	s.parses++
	stmts, err := parseSafely(s.vars.parser, sql)
	if gerr := facts.Grammar(nil, err); gerr != nil { // no SET is prepared anyway
		return nil, gerr
	}
	if r, ok := planner.ExplainText(sql, s.parseOne); ok {
		return s.prepareExplain(ctx, snap, sql, r)
	}
	var st ast.StmtNode
	text, clause := sql, ""
	if err != nil {
		var ok bool
		if st, text, clause, ok = planner.ReturningStmt(sql, s.parseOne); !ok {
			return nil, refuseUnparsed(sql, syntaxError(err))
		}
		if err := s.planner(snap).CheckReturning(snap, clause, s.parseOne); err != nil {
			return nil, err
		}
	} else if st, err = oneStmt(stmts); err != nil {
		return nil, err
	}
	switch n := st.(type) {
	case *ast.ShowStmt:
		if n.Tp == ast.ShowDatabases {
			res, err := s.planner(snap).ShowDatabases(snap, n)
			if err != nil {
				return nil, err
			}
			stmt := &Stmt{orig: sql, local: n}
			for _, c := range res.Columns {
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
	p, err := s.planner(snap).DescribePrepared(snap, st, text, clause)
	if err != nil {
		return nil, err
	}
	shard, first := plan.First(p)
	bs, pkts, err := s.prepareOn(ctx, snap, shard, first)
	if err != nil {
		return nil, err
	}
	stmt := &Stmt{orig: sql, text: text, returning: clause, write: planner.IsWrite(st), readOnly: readsOnly(st), idRule: insertIDRuleOf(st), replicaOK: planner.ReplicaSafe(st, text), retryOK: planner.RetryableRead(st), params: bs.Params,
		hint: statementHint(st), exempt: exempt(st)}
	stmt.setPlan(s, snap, p)
	stmt.paramDefs = pkts[:bs.Params]
	stmt.colDefs = pkts[bs.Params:]
	if _, multi := p.(*plan.MultiWrite); multi { // described from its first branch, which may hold fewer of the ?s
		stmt.params, stmt.paramDefs = clientParams(st, stmt.paramDefs)
	}
	stmt.rows = rowsKindOf(st)
	for i, d := range stmt.colDefs {
		stmt.colDefs[i] = p.Attributes().Columns.Rewrite(d)
	}
	return stmt, nil
}

// clientParams are the parameter count and definitions of the client's statement st, whose
// backend description defs covers only part of it: each ? is then described as text (as a
// prepared EXPLAIN's are, explain_prepared.go).
func clientParams(st ast.StmtNode, defs [][]byte) (int, [][]byte) {
	var markers planner.MarkerCollector
	st.Accept(&markers)
	if len(markers) == len(defs) {
		return len(defs), defs
	}
	defs = defs[:0:0]
	for range markers {
		defs = append(defs, wire.AppendColumnDef(nil, wire.Column{Name: "?", Charset: 63, Type: mysql.MYSQL_TYPE_VAR_STRING}))
	}
	return len(markers), defs
}

// setPlan keeps p, the statement's plan under snap, for its executions.
func (st *Stmt) setPlan(s *Session, snap *rules.Snapshot, p plan.Primitive) {
	attrs := p.Attributes()
	_, multi := p.(*plan.MultiWrite)
	st.shard, st.sql = plan.First(p)
	st.sticky, st.snap, st.columns = attrs.Sticky, snap, attrs.Columns
	st.dynamic = attrs.Dynamic || !attrs.Names.Empty() || multi
	st.bound, st.writes = nil, nil
	if st.returning == "" {
		pl := s.planner(snap)
		st.bound, st.writes = boundOf(p), pl.NewWriteRoute(snap, p)
		if multi && attrs.Dynamic {
			st.bound = pl.MultiRoute(snap, st.text, s.parseOne) // its session values are bind variables (router/planner)
		}
	}
}

// prepareOn prepares sql on a connection of shard to learn its metadata: the backend
// statement and its parameter then column definitions.
func (s *Session) prepareOn(ctx context.Context, snap *rules.Snapshot, shard *rules.Shard, sql string) (engine.Stmt, [][]byte, error) {
	var k engine.Collector
	bs, err := s.prepareBackend(ctx, snap, shard, sql, &k) // readretry.go: once more after a lost connection
	if err != nil {
		return engine.Stmt{}, nil, err
	}
	return bs, k.Pkts, nil
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
	snap := s.r.rules.Load() // the one snapshot of this execution
	seq := s.diag.seq
	var err error
	if st.exempt {
		err = s.execute(ctx, snap, st, params, w)
	} else {
		err = s.withDeadline(ctx, snap, st.hint, func(ctx context.Context) error {
			return s.execute(ctx, snap, st, params, w)
		})
	}
	s.diag.answered(ctx, len(st.colDefs) > 0 || st.local != nil, seq, err)
	return err
}

func (s *Session) execute(ctx context.Context, snap *rules.Snapshot, st *Stmt, params []wire.Param, w wire.PacketWriter) error {
	if len(params) != st.params {
		return sqlerr.New(sqlerr.ErWrongArguments, "Incorrect arguments to mysqld_stmt_execute")
	}
	if st.txnControl {
		return s.Query(ctx, st.orig, false, w)
	}
	s.ids.rule = st.idRule.bind(params)
	defer func() { s.ids.rule = insertIDRule{} }()
	if st.explain {
		return s.executeExplain(ctx, snap, st, params, w)
	}
	if st.local != nil {
		res, err := s.planner(snap).ShowDatabases(snap, st.local)
		if err != nil {
			return err
		}
		return localResult{cols: res.Columns, rows: res.Rows}.write(w, s.status, true)
	}
	s.reads.retryable = st.retryOK
	defer func() { s.reads.retryable = false }()
	if st.snap != nil && st.snap != snap {
		st.replan(s, snap) // after a reload: planned once more (bound.go)
	}
	r := singleRoute{shard: st.shard, sql: st.sql, params: params}
	if shard, sql, cols, ok := st.bound.Resolve(execViewOf(s), snap, params); ok {
		r.shard, r.sql = shard, sql // no parse, no plan: the route's bind variables filled in
		if !cols.Empty() {
			w = introspect.NewColumns(w, cols)
		}
	} else if sp, cols, ok := st.scatter.Resolve(execViewOf(s), snap, params, s.parseOne); ok {
		return st.executeScattered(ctx, s, snap, sp, cols, w) // no parse, no plan: the shards' statements filled in
	} else if sp, cols, ok := untemplated(s, st.scatter, snap, st, params); ok {
		return st.executeScattered(ctx, s, snap, sp, cols, w) // one parse: no template fits it
	} else if p, ok := st.writes.Resolve(execViewOf(s), snap, params); ok {
		return st.executeBranches(ctx, s, snap, p, w) // no parse, no plan: the branches handed their values
	} else if p, ok := st.bound.ResolveWrite(execViewOf(s), snap, params); ok {
		return st.executeBranches(ctx, s, snap, p, w) // no parse: split on the statement's tree
	} else if st.dynamic || (st.snap != nil && st.snap != snap) { // a reload may have moved its rows
		return st.executePlanned(ctx, s, snap, params, w)
	} else if !st.columns.Empty() {
		w = introspect.NewColumns(w, st.columns)
	}
	return st.executeSingle(ctx, s, snap, r, w)
}

// singleRoute is where one execution of a prepared statement goes when it goes to one
// shard: the SQL prepared there and the values it executes with.
type singleRoute struct {
	shard      *rules.Shard
	sql        string
	params     []wire.Param
	diagnostic bool             // it asks about the previous statement: keep the diagnostics
	names      introspect.Names // database names of an information_schema statement, translated in its values and rows
}

// executePlanned parses and plans one execution of st in full, with its values: the
// shapes no plan kept at PREPARE holds for (see Execute's order), and any statement whose
// kept plan no longer holds.
func (st *Stmt) executePlanned(ctx context.Context, s *Session, snap *rules.Snapshot, params []wire.Param, w wire.PacketWriter) error {
	p, bound, err := st.planExecution(ctx, s, snap, params)
	if bound {
		params = nil // bound into the statement
	}
	if err == nil && st.returning != "" {
		p, err = planner.WithReturning(p, st.returning)
	}
	if err != nil {
		return err
	}
	if cols := p.Attributes().Columns; !cols.Empty() {
		w = introspect.NewColumns(w, cols)
	}
	if r, ok := plan.RouteOf(p); ok { // a Route or a Passthrough
		return st.executeSingle(ctx, s, snap, singleRoute{shard: r.Shard, sql: r.SQL, params: params, diagnostic: r.Diagnostic, names: r.Names}, w)
	}
	switch p := p.(type) {
	case *plan.Scatter:
		s.route = RouteScatter
		if bound {
			return s.runScatter(ctx, snap, p, false, w, true)
		}
		if st.returning == "" && !st.scatter.TriedUnder(execViewOf(s), snap) {
			// Planned once for this and every later execution (router/planner's scatter_prepared.go).
			st.scatter = planner.PrepareScatter(s.planner(snap), snap, st.text, s.parseOne)
			if sp, _, ok := st.scatter.Resolve(execViewOf(s), snap, params, s.parseOne); ok {
				return s.runScatterRead(ctx, snap, sp, s.readView().PreparedSplit(snap, st.replicaOK), false, w, true) // readretry.go
			}
		}
		return s.executeScatter(ctx, snap, st, params, w)
	case *plan.MultiWrite:
		return st.executeBranches(ctx, s, snap, p, w)
	}
	return sqlerr.New(sqlerr.ErUnknownError, "router: a prepared statement planned as %T", p)
}

// executeSingle runs one execution of st on the shard of r.
func (st *Stmt) executeSingle(ctx context.Context, s *Session, snap *rules.Snapshot, r singleRoute, w wire.PacketWriter) error {
	params := r.params
	if !r.names.Empty() {
		params = r.names.PhysicalParams(params)
		w = introspect.NewRows(w, r.names, true)
	}
	if st.sticky {
		s.sticky = true
	}
	if st.write {
		if err := s.checkWrite(ctx, r.shard); err != nil {
			return err
		}
	}
	s.reads.readOnly = st.readOnly
	s.reads.replica = s.readView().PreparedSplit(snap, st.replicaOK)
	defer func() { s.reads.readOnly, s.reads.replica = false, rules.ReadSplit{} }()
	err := s.runFoundRows(st.rows, w, func(w wire.PacketWriter) error {
		return s.retryRead(ctx, r.shard.Name, w, func(w wire.PacketWriter) error { // readretry.go
			return s.executeOn(ctx, snap, r.shard, r.sql, params, r.diagnostic, w)
		})
	})
	if st.write {
		return lostWrite(err)
	}
	return err
}

// executeScattered runs a prepared SELECT's scatter read sp, its columns renamed by cols.
func (st *Stmt) executeScattered(ctx context.Context, s *Session, snap *rules.Snapshot, sp *plan.Scatter, cols introspect.Columns, w wire.PacketWriter) error {
	s.route = RouteScatter
	if !cols.Empty() {
		w = introspect.NewColumns(w, cols)
	}
	return s.runScatterRead(ctx, snap, sp, s.readView().PreparedSplit(snap, st.replicaOK), false, w, true) // readretry.go
}

// executeBranches runs a prepared statement's multi-shard write p.
func (st *Stmt) executeBranches(ctx context.Context, s *Session, snap *rules.Snapshot, p *plan.MultiWrite, w wire.PacketWriter) error {
	s.reads.forgetGTIDs(planner.SplitSetting(snap, s.user, s.db), p.Branches)
	s.route = RouteMultiWrite
	s.branchRows = st.rows
	defer func() { s.branchRows = rowsPlain }()
	return s.execMulti(ctx, snap, p, false, w)
}

// executeOn executes sql, prepared on shard's connection if it is not yet, with params.
func (s *Session) executeOn(ctx context.Context, snap *rules.Snapshot, shard *rules.Shard, sql string, params []wire.Param, diagnostic bool, w wire.PacketWriter) error {
	c, err := s.acquire(ctx, snap, shard)
	if err != nil {
		return err
	}
	bs, ok := c.State().Stmt(engine.StmtKey(c, sql))
	if !ok {
		it := s.intr.watchOnDone(ctx, shard, c)
		bs, err = engine.Prepare(ctx, c, sql, nil)
		it.Stop()
	}
	var out engine.Outcome
	if err == nil {
		if bs.Params != len(params) {
			err = sqlerr.New(sqlerr.ErWrongArguments, "Incorrect arguments to mysqld_stmt_execute: the statement changed on the backend")
		} else {
			out, err = s.intr.relayOn(ctx, shard, c, engine.ComStmtExecute, engine.ExecutePayload(bs.ID, params), false, !s.reads.readOnly, w)
		}
	}
	s.diag.keep = diagnostic
	s.diag.record(ctx, c, out, err)
	s.diag.keep = false
	out.LastInsertID = s.ids.generated(ctx, c, out, err) // (relayed already) after record: its SHOW WARNINGS comes first
	s.reads.trackGTID(ctx, planner.SplitSetting(snap, s.user, s.db), shard, c, err)
	return s.finish(shard, c, out, err)
}

// untemplated places an execution of a prepared SELECT that went to several shards under
// this snapshot and fits no template (a merge that reads a value, LIMIT ? over tables per
// slot, a session value in the select list, subqueries): the values are written into the
// statement's kept tree (keptTree, parsed at the first such execution) and it is planned,
// without parsing. ok is false when the statement has a template or none was tried, or
// when the values send it elsewhere than to several shards (the caller then plans it in
// full).
func untemplated(s *Session, t *planner.ScatterTemplate, snap *rules.Snapshot, st *Stmt, params []wire.Param) (*plan.Scatter, introspect.Columns, bool) {
	if !t.TriedUnder(execViewOf(s), snap) || (t.Shards != nil && t.PerSlot == nil) || st.returning != "" {
		return nil, introspect.Columns{}, false
	}
	if !st.kept.holds(s, snap) || st.kept.refusal != nil {
		node, err := s.parseOne(st.text)
		if err != nil {
			return nil, introspect.Columns{}, false
		}
		st.kept = newKeptTree(s, snap, node, nil)
	}
	if planner.BindLiterals(st.kept.lits, params) != nil {
		return nil, introspect.Columns{}, false
	}
	p, err := s.plan(snap, st.kept.st, st.text, nil) // planning leaves the tree as it was
	sp, ok := p.(*plan.Scatter)
	if err != nil || !ok {
		return nil, introspect.Columns{}, false
	}
	return sp, sp.Columns, true
}

// planExecution plans one execution of st with its values params. A statement refused for
// its subqueries over several shards (subquery_bind.go) is planned with its values and
// its subqueries' bound in (bound): from the tree it keeps for that (keptTree), parsed
// once; an INSERT ... SELECT, whose tree binding its rows changes, is parsed each time.
func (st *Stmt) planExecution(ctx context.Context, s *Session, snap *rules.Snapshot, params []wire.Param) (plan.Primitive, bool, error) {
	if n := st.kept; n.holds(s, snap) && n.refusal != nil {
		if err := planner.BindLiterals(n.lits, params); err != nil {
			return nil, true, err
		}
		p, err := s.planBound(ctx, snap, n.st, n.refusal)
		return p, true, err
	}
	node, err := s.parseOne(st.text)
	if err != nil {
		return nil, false, err
	}
	p, err := s.plan(snap, node, st.text, params)
	if !errors.Is(err, planner.ErrNestedUnpinned) {
		return p, false, err
	}
	if _, ok := node.(*ast.InsertStmt); ok {
		if err := planner.BindParams(node, params); err != nil {
			return nil, true, err
		}
		p, err = s.planBound(ctx, snap, node, err)
		return p, true, err
	}
	st.kept = newKeptTree(s, snap, node, err) // planning left node as it was
	if err := planner.BindLiterals(st.kept.lits, params); err != nil {
		return nil, true, err
	}
	p, err = s.planBound(ctx, snap, st.kept.st, err)
	return p, true, err
}

// keptTree is the tree a prepared statement planned at each execution keeps: its ? are
// literal slots each EXECUTE writes its values into, and planning leaves it as it was, so
// nothing is parsed again. It serves a statement refused for its subqueries over several
// shards (refusal set: planBound binds the subqueries' values into it and puts it back)
// and a SELECT over several shards that fits no scatter template (untemplated). It holds
// for the snapshot, database and restore flags (the session's sql_mode) it was parsed
// under.
type keptTree struct {
	snap    *rules.Snapshot
	db      string
	flags   format.RestoreFlags
	st      ast.StmtNode
	lits    []*test_driver.ValueExpr
	refusal error // why the statement is not planned as it is; nil for untemplated
}

// newKeptTree keeps st, parsed from the statement's text under snap, for its executions.
func newKeptTree(s *Session, snap *rules.Snapshot, st ast.StmtNode, refusal error) *keptTree {
	var markers planner.MarkerCollector
	st.Accept(&markers)
	slices.SortFunc(markers, func(x, y *test_driver.ParamMarkerExpr) int { return x.Offset - y.Offset })
	return &keptTree{snap: snap, db: s.db, flags: s.vars.restoreFlags, st: st, lits: planner.LiteralSlots(st, markers), refusal: refusal}
}

// holds reports whether the tree was kept under the session's snapshot, database and
// restore flags.
func (n *keptTree) holds(s *Session, snap *rules.Snapshot) bool {
	return n != nil && n.snap == snap && n.db == s.db && n.flags == s.vars.restoreFlags
}
