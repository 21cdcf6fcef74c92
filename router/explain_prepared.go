package router

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// EXPLAIN / DESCRIBE / ANALYZE of a statement as a prepared statement (COM_STMT_PREPARE).
// Which shards run the statement depends on its parameters, so the answer is built at each
// execution as for the plain query (explain_stmt.go): the bound values are written into
// the statement as literals, the shards that would run it are asked, and their text rows are
// sent in the binary protocol. At prepare time the statement is planned without its values
// (so a refused statement is refused with its own reason) and the EXPLAIN of the shard
// statement that describes it is prepared on that shard for the metadata: parameter and
// column definitions, with a first column `shard` when the plan runs on several shards.

// prepareExplain prepares r, the EXPLAIN / ANALYZE text sql.
func (s *Session) prepareExplain(ctx context.Context, snap *rules.Snapshot, sql string, r planner.ExplainReq) (*Stmt, error) {
	var markers planner.MarkerCollector
	r.Stmt.Accept(&markers)
	p, err := s.describe(snap, r.Stmt, r.Text)
	if err != nil {
		return nil, err
	}
	shard, text := plan.First(p)
	_, single := plan.RouteOf(p)
	labelled := !single
	bs, pkts, err := s.prepareOn(ctx, snap, shard, r.Head+text)
	if err != nil {
		return nil, err
	}
	stmt := &Stmt{orig: sql, text: sql, explain: true, params: len(markers), hint: statementHint(r.Stmt), write: r.Analyze && planner.IsWrite(r.Stmt)}
	if bs.Params == len(markers) {
		stmt.paramDefs = pkts[:bs.Params]
	} else { // the shard's statement has other placeholders: describe each as text
		for range markers {
			stmt.paramDefs = append(stmt.paramDefs, wire.AppendColumnDef(nil, wire.Column{Name: "?", Charset: 63, Type: mysql.MYSQL_TYPE_VAR_STRING}))
		}
	}
	if labelled {
		stmt.colDefs = append(stmt.colDefs, wire.AppendColumnDef(nil, shardColumn))
	}
	for _, d := range pkts[bs.Params:] {
		stmt.colDefs = append(stmt.colDefs, p.Attributes().Columns.Rewrite(d))
	}
	return stmt, nil
}

// executeExplain runs a prepared EXPLAIN with params: the answer of the same EXPLAIN sent
// as a plain query with the values written in, in the binary protocol.
func (s *Session) executeExplain(ctx context.Context, snap *rules.Snapshot, st *Stmt, params []wire.Param, w wire.PacketWriter) error {
	r, ok := planner.ExplainText(st.orig, s.parseOne)
	if !ok {
		return sqlerr.New(sqlerr.ErUnknownError, "router: a prepared EXPLAIN no longer reads as one")
	}
	if len(params) > 0 {
		if err := planner.BindParams(r.Stmt, params); err != nil {
			return err
		}
		text, err := planner.RestoreSQL(s.vars.restoreFlags, s.lists, r.Stmt)
		if err != nil {
			return err
		}
		r.Text = text
	}
	return s.execExplain(ctx, snap, r, false, &binaryRows{w: w})
}

// binaryRows is a PacketWriter that passes text-protocol result sets to w in the binary
// protocol: column definitions and EOF packets as they are, each row encoded by its
// columns' types (engine.AppendBinaryRow).
type binaryRows struct {
	w    wire.PacketWriter
	cols []wire.ColDef
	t    wire.ResultTracker
	vals [][]byte
	buf  []byte
}

// WritePacket passes p on, a row in the binary protocol.
func (b *binaryRows) WritePacket(p []byte) error {
	switch b.t.Next(p) {
	case wire.PartColumnCount:
		b.cols = b.cols[:0]
	case wire.PartColumnDef:
		c, ok := wire.ParseColDef(p)
		if !ok {
			return malformedExplain
		}
		b.cols = append(b.cols, c)
	case wire.PartRow:
		return b.row(p)
	}
	return b.w.WritePacket(p)
}

// row passes a text row on in the binary protocol.
func (b *binaryRows) row(p []byte) error {
	b.vals = b.vals[:0]
	rest := p
	for range b.t.Columns() {
		v, null, m := wire.LenencString(rest)
		if m == 0 {
			return malformedExplain
		}
		if null {
			v = nil
		} else if v == nil {
			v = []byte{}
		}
		b.vals = append(b.vals, v)
		rest = rest[m:]
	}
	var err error
	if b.buf, err = engine.AppendBinaryRow(b.buf[:0], b.cols, b.vals); err != nil {
		return sqlerr.New(sqlerr.ErMalformedPacket, "Malformed communication packet (an EXPLAIN row from a shard: %v)", err)
	}
	return b.w.WritePacket(b.buf)
}

// SQL-level PREPARE name FROM 'EXPLAIN ...' is kept by the proxy, not prepared on a backend
// (the shards that answer depend on the values): PREPARE checks and plans the statement
// (a refused one is refused with its own reason) and remembers its text; EXECUTE name
// [USING @v, ...] reads the user variables where the session's user variables live (the
// database's default shard, as PREPARE ... FROM @v does), writes their values into the
// statement as literals of their types, and answers as the plain query; DEALLOCATE forgets
// it.

// sqlPrepareExplain runs PREPARE name FROM text, text an EXPLAIN / ANALYZE r.
func (s *Session) sqlPrepareExplain(snap *rules.Snapshot, name, text string, r planner.ExplainReq, more bool, w wire.PacketWriter) error {
	if _, err := s.describe(snap, r.Stmt, r.Text); err != nil {
		return err
	}
	s.sqlStmts.put(name, sqlStmt{explain: text})
	return s.writeOK(w, more) // MariaDB: "Statement prepared"
}

// sqlExecuteExplain runs EXECUTE of a SQL-level prepared EXPLAIN with the values of vars.
func (s *Session) sqlExecuteExplain(ctx context.Context, snap *rules.Snapshot, text string, vars []ast.ExprNode, more bool, w wire.PacketWriter) error {
	r, ok := planner.ExplainText(text, s.parseOne)
	if !ok {
		return sqlerr.New(sqlerr.ErUnknownError, "router: a prepared EXPLAIN no longer reads as one")
	}
	var markers planner.MarkerCollector
	r.Stmt.Accept(&markers)
	if len(markers) != len(vars) {
		return sqlerr.New(sqlerr.ErWrongArguments, "Incorrect arguments to EXECUTE")
	}
	if len(vars) > 0 {
		values, err := s.userValues(ctx, snap, vars)
		if err != nil {
			return err
		}
		slices.SortFunc(markers, func(x, y *test_driver.ParamMarkerExpr) int { return x.Offset - y.Offset })
		bound := make(planner.MarkerReplacer, len(markers))
		for i, m := range markers {
			bound[m] = values[i]
		}
		r.Stmt.Accept(bound)
		if r.Text, err = planner.RestoreSQL(s.vars.restoreFlags, s.lists, r.Stmt); err != nil {
			return err
		}
	}
	return s.execExplain(ctx, snap, r, more, w)
}

// userValues reads user variables vars (@v expressions) as literals of their types: numbers,
// strings or NULL. JSON_TYPE tells a number from a string holding one.
func (s *Session) userValues(ctx context.Context, snap *rules.Snapshot, vars []ast.ExprNode) ([]ast.ExprNode, error) {
	var cols []string
	for _, v := range vars {
		ref := "@" + quoteName(v.(*ast.VariableExpr).Name)
		cols = append(cols, ref, "JSON_TYPE(JSON_EXTRACT(JSON_ARRAY("+ref+"), '$[0]'))")
	}
	db := s.planner(snap).AnyDatabase(snap)
	if s.db != "" {
		db, _ = snap.Database(s.db)
	}
	if db == nil {
		return nil, sqlerr.New(sqlerr.ErNoDB, "No database selected")
	}
	c, err := s.acquire(ctx, snap, db.DefaultShard)
	if err != nil {
		return nil, err
	}
	row, err := engine.QueryRow(ctx, c, "SELECT "+strings.Join(cols, ", "))
	if err = s.finish(db.DefaultShard, c, engine.Outcome{Status: s.status}, err); err != nil {
		return nil, err
	}
	if len(row) != 2*len(vars) {
		return nil, sqlerr.New(sqlerr.ErUnknownError, "router: reading user variables: %d values for %d", len(row), len(vars))
	}
	out := make([]ast.ExprNode, len(vars))
	for i := range vars {
		v, typ := row[2*i], row[2*i+1]
		switch {
		case v == nil:
			out[i] = ast.NewValueExpr(nil, "", "")
		case typ != nil && *typ == "INTEGER":
			n, err := strconv.ParseInt(*v, 10, 64)
			if err != nil {
				out[i] = ast.NewValueExpr(*v, "", "") // beyond BIGINT: as its digits
				break
			}
			out[i] = ast.NewValueExpr(n, "", "")
		case typ != nil && *typ == "DOUBLE":
			f, err := strconv.ParseFloat(*v, 64)
			if err != nil {
				return nil, sqlerr.New(sqlerr.ErUnknownError, "router: user variable %q: %v", *v, err)
			}
			out[i] = ast.NewValueExpr(f, "", "")
		default:
			out[i] = ast.NewValueExpr(*v, "", "")
		}
	}
	return out, nil
}
