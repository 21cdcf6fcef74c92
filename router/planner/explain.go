package planner

import (
	"regexp"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// EXPLAIN, DESCRIBE and ANALYZE of a statement: the statement is planned as it would run and
// each shard it reaches is asked for its own plan (the session runs those and merges their
// answers).

// explainPrefix matches the head of MariaDB's EXPLAIN / DESCRIBE / ANALYZE of a statement,
// with its modifiers (EXTENDED, PARTITIONS, FORMAT=JSON; EXPLAIN ANALYZE is MySQL's and
// MariaDB refuses it, so it is passed on as written). The parser knows neither ANALYZE
// <statement> nor EXTENDED and PARTITIONS, so the head is cut off the text and only the
// statement after it is parsed.
var explainPrefix = regexp.MustCompile(`(?is)^\s*(?:EXPLAIN|DESCRIBE|DESC|ANALYZE)(?:\s+(?:EXTENDED|PARTITIONS|ANALYZE|FORMAT\s*=\s*(?:\w+|'[^']*'|"[^"]*")))*\s+`)

// ExplainReq is an EXPLAIN, DESCRIBE or ANALYZE of a statement.
type ExplainReq struct {
	Head    string // the EXPLAIN ... / ANALYZE ... text before the statement, sent as written
	Stmt    ast.StmtNode
	Text    string // the statement's text
	Analyze bool   // ANALYZE runs the statement
}

// ExplainText recognises sql as an EXPLAIN / ANALYZE of one statement, parsing the
// statement after the head with parse. ok is false for anything else (DESCRIBE <table>,
// ANALYZE TABLE).
func ExplainText(sql string, parse ParseFunc) (ExplainReq, bool) {
	m := explainPrefix.FindStringIndex(sql)
	if m == nil {
		return ExplainReq{}, false
	}
	rest := strings.TrimRight(strings.TrimSpace(sql[m[1]:]), "; \t\r\n")
	st, err := parse(rest)
	if err != nil || !Explainable(st) {
		return ExplainReq{}, false
	}
	head := sql[:m[1]]
	return ExplainReq{Head: head, Stmt: st, Text: rest, Analyze: isAnalyzeHead(head)}, true
}

// ExplainOf turns a parsed EXPLAIN, whose text is text, into a request, or ok false when it
// explains no statement (DESCRIBE <table> is a SHOW).
func (pl *Planner) ExplainOf(e *ast.ExplainStmt, text string, parse ParseFunc) (ExplainReq, bool, error) {
	if !Explainable(e.Stmt) {
		return ExplainReq{}, false, nil
	}
	if r, ok := ExplainText(text, parse); ok {
		return r, true, nil
	}
	// The head could not be cut off the text (a comment inside it): rebuild it.
	inner, err := RestoreSQL(pl.RestoreFlags, pl.Lists, e.Stmt)
	if err != nil {
		return ExplainReq{}, false, err
	}
	head := "EXPLAIN "
	if e.Analyze {
		head = "EXPLAIN ANALYZE "
	}
	if f := strings.ToLower(e.Format); f != "" && f != "row" {
		head += "FORMAT=" + e.Format + " "
	}
	return ExplainReq{Head: head, Stmt: e.Stmt, Text: inner}, true, nil
}

func isAnalyzeHead(head string) bool {
	return strings.HasPrefix(strings.ToUpper(strings.TrimSpace(head)), "ANALYZE")
}

// ExplainTarget is one statement an EXPLAIN sends to a shard, with the renaming of its
// answer.
type ExplainTarget struct {
	Shard *rules.Shard
	SQL   string
	Names introspect.Columns
}

// ExplainPlan is where an EXPLAIN / ANALYZE goes: one target for a statement routed to one
// shard; one per shard statement (Labelled: each answer is labelled by its shard) for
// scatter reads and multi-shard writes. P is the explained statement's plan.
type ExplainPlan struct {
	P        plan.Primitive
	Targets  []ExplainTarget
	Labelled bool
}

// PlanExplain plans the statement of r and returns what each shard is asked.
func (pl *Planner) PlanExplain(snap *rules.Snapshot, r ExplainReq) (ExplainPlan, error) {
	p, err := pl.Plan(snap, r.Stmt, r.Text, nil)
	if err != nil {
		return ExplainPlan{}, err
	}
	route, single := plan.RouteOf(p)
	ep := ExplainPlan{P: p, Labelled: !single}
	first, _ := plan.First(p)
	cols := p.Attributes().Columns
	logical := cols.LogicalDB(first)
	add := func(shard *rules.Shard, sql string) {
		ep.Targets = append(ep.Targets, ExplainTarget{Shard: shard, SQL: r.Head + sql, Names: cols.ForShard(shard, logical)})
	}
	if single {
		ep.Targets = []ExplainTarget{{Shard: route.Shard, SQL: r.Head + route.SQL, Names: cols}}
		return ep, nil
	}
	switch p := p.(type) {
	case *plan.Scatter:
		for _, t := range p.Targets {
			add(t.Shard, t.SQL)
		}
	case *plan.MultiWrite:
		if r.Analyze {
			return ExplainPlan{}, sqlerr.NotSupported("ANALYZE of a write spanning shards (it would run outside the write's atomic commit; EXPLAIN it instead)")
		}
		for _, b := range p.Branches {
			for _, st := range b.Stmts {
				add(b.Shard, st.SQL)
			}
		}
	}
	return ep, nil
}

// ExplainShards is the route of st (of text sql), planned and not run, as EXPLAIN SHARDS
// shows it: the steps of its plan's description (a prepared statement's bound route
// explains its bind variables); for an EXPLAIN of a statement, each shard's statement
// (step "route"); for LOCK TABLES over several shards, each shard's LOCK TABLES (step
// "lock"). The session's own statements (SET, USE, transaction control) have none. parse
// reads an EXPLAIN's statement as the session's parser does.
func (pl *Planner) ExplainShards(snap *rules.Snapshot, st ast.StmtNode, sql string, parse ParseFunc) ([]plan.Step, error) {
	if e, ok := st.(*ast.ExplainStmt); ok {
		if r, ok, err := pl.ExplainOf(e, sql, parse); ok || err != nil {
			if err != nil {
				return nil, err
			}
			ep, err := pl.PlanExplain(snap, r)
			if err != nil {
				return nil, err
			}
			var out []plan.Step
			for _, t := range ep.Targets {
				out = append(out, plan.Step{Step: "route", Shard: t.Shard.Name, SQL: t.SQL})
			}
			return out, nil
		}
	}
	if lock, ok := st.(*ast.LockTablesStmt); ok {
		targets, fanned, err := pl.PlanLock(snap, lock)
		if err != nil {
			return nil, err
		}
		if fanned {
			var out []plan.Step
			for _, t := range targets {
				out = append(out, plan.Step{Step: "lock", Shard: t.Shard.Name, SQL: t.SQL})
			}
			return out, nil
		}
	}
	switch st.(type) {
	case *ast.SetStmt, *ast.UseStmt, *ast.BeginStmt, *ast.CommitStmt, *ast.RollbackStmt:
		return nil, sqlerr.NotSupported("EXPLAIN SHARDS of %T (session statements are answered by the proxy)", st)
	}
	p, err := pl.PlanStatement(snap, st, sql)
	if err != nil {
		return nil, err
	}
	if r, ok := plan.RouteOf(p); ok && r.Bound != nil {
		return r.Bound.Explain()
	}
	return p.Describe().Steps, nil
}
