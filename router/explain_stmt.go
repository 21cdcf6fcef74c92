package router

import (
	"context"
	"regexp"
	"strings"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// explainPrefix matches the head of MariaDB's EXPLAIN / DESCRIBE / ANALYZE of a statement,
// with its modifiers (EXTENDED, PARTITIONS, FORMAT=JSON; EXPLAIN ANALYZE is MySQL's and
// MariaDB refuses it, so it is passed on as written). The parser knows neither ANALYZE
// <statement> nor EXTENDED and PARTITIONS, so the head is cut off the text and only the
// statement after it is parsed.
var explainPrefix = regexp.MustCompile(`(?is)^\s*(?:EXPLAIN|DESCRIBE|DESC|ANALYZE)(?:\s+(?:EXTENDED|PARTITIONS|ANALYZE|FORMAT\s*=\s*(?:\w+|'[^']*'|"[^"]*")))*\s+`)

// explainReq is an EXPLAIN, DESCRIBE or ANALYZE of a statement.
type explainReq struct {
	head    string // the EXPLAIN ... / ANALYZE ... text before the statement, sent as written
	stmt    ast.StmtNode
	text    string // the statement's text
	analyze bool   // ANALYZE runs the statement
}

// explainText recognises sql as an EXPLAIN / ANALYZE of one statement, parsing the
// statement after the head. ok is false for anything else (DESCRIBE <table>, ANALYZE TABLE).
func (s *Session) explainText(sql string) (explainReq, bool) {
	m := explainPrefix.FindStringIndex(sql)
	if m == nil {
		return explainReq{}, false
	}
	rest := strings.TrimRight(strings.TrimSpace(sql[m[1]:]), "; \t\r\n")
	stmts, err := s.parse(rest)
	if err != nil || len(stmts) != 1 || !planner.Explainable(stmts[0]) {
		return explainReq{}, false
	}
	head := sql[:m[1]]
	return explainReq{head: head, stmt: stmts[0], text: rest, analyze: isAnalyzeHead(head)}, true
}

// explainOf turns a parsed EXPLAIN into a request, or ok false when it explains no statement
// (DESCRIBE <table> is a SHOW).
func (s *Session) explainOf(e *ast.ExplainStmt, text string) (explainReq, bool, error) {
	if !planner.Explainable(e.Stmt) {
		return explainReq{}, false, nil
	}
	if r, ok := s.explainText(text); ok {
		return r, true, nil
	}
	// The head could not be cut off the text (a comment inside it): rebuild it.
	inner, err := planner.RestoreSQL(s.vars.restoreFlags, s.lists, e.Stmt)
	if err != nil {
		return explainReq{}, false, err
	}
	head := "EXPLAIN "
	if e.Analyze {
		head = "EXPLAIN ANALYZE "
	}
	if f := strings.ToLower(e.Format); f != "" && f != "row" {
		head += "FORMAT=" + e.Format + " "
	}
	return explainReq{head: head, stmt: e.Stmt, text: inner}, true, nil
}

func isAnalyzeHead(head string) bool {
	return strings.HasPrefix(strings.ToUpper(strings.TrimSpace(head)), "ANALYZE")
}

// explainTarget is one statement an EXPLAIN sends to a shard, with the renaming of its
// answer.
type explainTarget struct {
	shard *rules.Shard
	sql   string
	names introspect.Columns
}

// explainPlan is where an EXPLAIN / ANALYZE goes: one target for a statement routed to one
// shard; one per shard statement (labelled) for scatter reads and multi-shard writes.
type explainPlan struct {
	p        plan.Primitive
	targets  []explainTarget
	labelled bool
}

// planExplain plans the statement of r and returns what each shard is asked.
func (s *Session) planExplain(snap *rules.Snapshot, r explainReq) (explainPlan, error) {
	p, err := s.plan(snap, r.stmt, r.text, nil)
	if err != nil {
		return explainPlan{}, err
	}
	route, single := plan.RouteOf(p)
	ep := explainPlan{p: p, labelled: !single}
	first, _ := plan.First(p)
	cols := p.Attributes().Columns
	logical := cols.LogicalDB(first)
	add := func(shard *rules.Shard, sql string) {
		ep.targets = append(ep.targets, explainTarget{shard: shard, sql: r.head + sql, names: cols.ForShard(shard, logical)})
	}
	if single {
		ep.targets = []explainTarget{{shard: route.Shard, sql: r.head + route.SQL, names: cols}}
		return ep, nil
	}
	switch p := p.(type) {
	case *plan.Scatter:
		for _, t := range p.Targets {
			add(t.Shard, t.SQL)
		}
	case *plan.MultiWrite:
		if r.analyze {
			return explainPlan{}, sqlerr.NotSupported("ANALYZE of a write spanning shards (it would run outside the write's atomic commit; EXPLAIN it instead)")
		}
		for _, b := range p.Branches {
			for _, st := range b.Stmts {
				add(b.Shard, st.SQL)
			}
		}
	}
	return ep, nil
}

// execExplain answers EXPLAIN / ANALYZE of a statement with the plans of the shards that
// would run it: a statement routed to one shard gets that shard's own answer; one that runs
// on several (scatter reads, multi-shard writes) gets each shard's answer, labelled by a
// first column `shard`. Physical database and slot table names are turned back into the
// logical ones.
func (s *Session) execExplain(ctx context.Context, snap *rules.Snapshot, r explainReq, more bool, w wire.PacketWriter) error {
	ep, err := s.planExplain(snap, r)
	if err != nil {
		return err
	}
	if attrs := ep.p.Attributes(); attrs.Sticky {
		s.sticky = true
	}
	if names := ep.p.Attributes().Names; !names.Empty() {
		w = introspect.NewRows(w, names, false)
	}
	n := len(ep.targets)
	for i, t := range ep.targets {
		lw := &explainWriter{w: w, first: i == 0, last: i == n-1, names: t.names}
		if ep.labelled {
			lw.label = t.shard.Name
		}
		last := more && i == n-1
		if r.analyze && planner.IsWrite(r.stmt) {
			// ANALYZE runs the statement: a write like any other (one shard, see planExplain).
			if err := s.checkWrite(ctx, t.shard); err != nil {
				return err
			}
			err = s.run(ctx, snap, t.shard, t.sql, last, lw)
		} else {
			err = s.runRead(ctx, snap, t.shard, t.sql, last, lw)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// explainWriter passes one shard's EXPLAIN result (text protocol) to the client with logical
// names. With a label it adds a first column `shard` holding it; the column definitions are
// written only by the first shard and the closing EOF only by the last, so the shards'
// answers form one result set.
type explainWriter struct {
	w           wire.PacketWriter
	label       string
	first, last bool
	names       introspect.Columns
	t           wire.ResultTracker
	buf         []byte
}

// WritePacket passes p on as the merged result has it (see explainWriter).
func (e *explainWriter) WritePacket(p []byte) error {
	switch e.t.Next(p) {
	case wire.PartColumnCount:
		if !e.first {
			return nil
		}
		if e.label == "" {
			return e.w.WritePacket(p)
		}
		if err := e.w.WritePacket(wire.AppendLenencInt(nil, uint64(e.t.Columns()+1))); err != nil {
			return err
		}
		return e.w.WritePacket(wire.AppendColumnDef(nil, shardColumn))
	case wire.PartColumnDef:
		if !e.first {
			return nil
		}
		return e.w.WritePacket(e.names.Rewrite(p))
	case wire.PartDefsEOF:
		if !e.first {
			return nil
		}
		return e.w.WritePacket(p)
	case wire.PartEnd:
		if !e.last {
			return nil
		}
		return e.w.WritePacket(p)
	case wire.PartRow:
		return e.row(p)
	}
	return e.w.WritePacket(p) // not a result set, or its ERR
}

// row passes a row on with its label first and its values' names made logical.
func (e *explainWriter) row(p []byte) error {
	e.buf = e.buf[:0]
	if e.label != "" {
		e.buf = wire.AppendLenencString(e.buf, e.label)
	}
	rest := p
	for range e.t.Columns() {
		v, null, m := wire.LenencString(rest)
		if m == 0 {
			return malformedExplain
		}
		if null {
			e.buf = append(e.buf, rest[:m]...)
		} else {
			e.buf = wire.AppendLenencString(e.buf, e.names.LogicalText(string(v)))
		}
		rest = rest[m:]
	}
	return e.w.WritePacket(e.buf)
}

// shardColumn is the first column of an EXPLAIN answered by several shards: which one.
var shardColumn = wire.Column{Name: "shard", Charset: 45, Length: 256, Type: mysql.MYSQL_TYPE_VAR_STRING, Flags: mysql.NOT_NULL_FLAG}

// malformedExplain is the error of an EXPLAIN row that does not decode.
var malformedExplain = sqlerr.New(sqlerr.ErMalformedPacket, "Malformed communication packet (an EXPLAIN row from a shard)")
