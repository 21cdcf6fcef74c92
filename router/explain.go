package router

import (
	"regexp"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// explainShards matches EXPLAIN SHARDS <statement>, the proxy's own statement showing how a
// statement is routed (MySQL's parser has no such form, so it is recognised before parsing).
var explainShards = regexp.MustCompile(`(?is)^\s*EXPLAIN\s+SHARDS\s+(.+)$`)

// ExplainStep is one line of a route plan: a statement sent to a shard, or a merge step.
type ExplainStep struct {
	Step, Shard, Detail string
}

// Explain plans sql (one statement) without running it and returns its route.
func (s *Session) Explain(sql string) ([]ExplainStep, error) {
	snap := s.r.rules.Load()
	st, err := s.parseOne(sql)
	if err != nil {
		return nil, err
	}
	return s.explain(snap, st, sql)
}

func (s *Session) explain(snap *rules.Snapshot, st ast.StmtNode, sql string) ([]ExplainStep, error) {
	if e, ok := st.(*ast.ExplainStmt); ok {
		if r, ok, err := s.explainOf(e, sql); ok || err != nil {
			if err != nil {
				return nil, err
			}
			ep, err := s.planExplain(snap, r)
			if err != nil {
				return nil, err
			}
			var out []ExplainStep
			for _, t := range ep.targets {
				out = append(out, ExplainStep{Step: "route", Shard: t.shard.Name, Detail: t.sql})
			}
			return out, nil
		}
	}
	if lock, ok := st.(*ast.LockTablesStmt); ok {
		targets, fanned, err := s.planner(snap).planLock(snap, lock)
		if err != nil {
			return nil, err
		}
		if fanned {
			var out []ExplainStep
			for _, t := range targets {
				out = append(out, ExplainStep{Step: "lock", Shard: t.shard.Name, Detail: t.sql})
			}
			return out, nil
		}
	}
	switch st.(type) {
	case *ast.SetStmt, *ast.UseStmt, *ast.BeginStmt, *ast.CommitStmt, *ast.RollbackStmt:
		return nil, sqlerr.NotSupported("EXPLAIN SHARDS of %T (session statements are answered by the proxy)", st)
	}
	if isTableDDL(st) {
		refs, err := s.planner(snap).ddlTargets(snap, st)
		if err != nil {
			return nil, err
		}
		if refs != nil {
			var out []ExplainStep
			for _, r := range refs {
				for _, pl := range r.table.Placements() {
					out = append(out, ExplainStep{Step: "ddl", Shard: pl.Shard.Name, Detail: "on table " + pl.Table})
				}
			}
			return out, nil
		}
	}
	p, err := s.plan(snap, st, sql, nil)
	if err != nil {
		return nil, err
	}
	if p.branches != nil {
		return explainBranches(p), nil
	}
	if p.bound != nil {
		return p.bound.explain()
	}
	if p.scatter == nil {
		return []ExplainStep{{Step: "route", Shard: p.shard.Name, Detail: p.sql}}, nil
	}
	var out []ExplainStep
	for _, t := range p.scatter.targets {
		out = append(out, ExplainStep{Step: "route", Shard: t.shard.Name, Detail: t.sql})
	}
	for _, m := range p.scatter.merge.steps() {
		out = append(out, ExplainStep{Step: "merge", Detail: m})
	}
	return out, nil
}

// explainResult answers EXPLAIN SHARDS as a result set (step, shard, detail).
func (s *Session) explainResult(sql string) (localResult, error) {
	steps, err := s.Explain(sql)
	if err != nil {
		return localResult{}, err
	}
	col := func(name string) wire.Column {
		return wire.Column{Name: name, Charset: 45, Length: 4096, Type: mysql.MYSQL_TYPE_VAR_STRING}
	}
	res := localResult{cols: []wire.Column{col("step"), col("shard"), col("detail")}}
	for _, st := range steps {
		step, shard, detail := st.Step, st.Shard, st.Detail
		res.rows = append(res.rows, []*string{&step, &shard, &detail})
	}
	return res, nil
}
