package router

import (
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
)

// showOf returns the SHOW statement st is (DESCRIBE t is one), or nil.
func showOf(st ast.StmtNode) *ast.ShowStmt {
	if e, ok := st.(*ast.ExplainStmt); ok {
		st = e.Stmt
	}
	show, _ := st.(*ast.ShowStmt)
	return show
}

// showTarget places a SHOW about a sharded or broadcast table (SHOW COLUMNS, INDEX, CREATE
// TABLE) on the shard of its first physical copy, preferring the default shard, under that
// copy's physical name; the rows come back with the logical name (see introspect.Names).
func showTarget(refs []tableRef) *rules.Shard {
	pick := firstCopy(refs[0].table)
	rename(refs[0], pick.Table, false)
	return pick.Shard
}

// firstCopy is the physical copy of t that describes it: the first on the database's default
// shard, else the first of all.
func firstCopy(t *rules.Table) rules.Placement {
	ps := t.Placements()
	for _, p := range ps {
		if p.Shard == t.DB.DefaultShard {
			return p
		}
	}
	return ps[0]
}
