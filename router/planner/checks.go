package planner

import (
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// Explainable reports whether st is a statement EXPLAIN describes (not DESCRIBE <table>).
func Explainable(st ast.StmtNode) bool {
	switch st.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt, *ast.InsertStmt, *ast.UpdateStmt, *ast.DeleteStmt:
		return true
	}
	return false
}

// CheckLoad passes a LOAD DATA through the privilege barrier, as Session.plan would before
// routing it. Like Analyze it binds n (the session values its SET clause reads stay written
// into the tree): the caller sends n, named for each copy, as it is (loadsplit.go).
func (pl *Planner) CheckLoad(snap *rules.Snapshot, n *ast.LoadDataStmt) error {
	a, err := pl.Analyze(snap, n)
	if err != nil {
		return err
	}
	if pl.DB == "" && a.needsDB {
		return sqlerr.New(sqlerr.ErNoDB, "No database selected")
	}
	_, err = pl.StatementDB(snap, a)
	return err
}

// LoadTarget returns the table of a LOAD DATA LOCAL when it is a sharded or broadcast table
// (which the session loads on every shard holding it, each shard its part of the file), or
// nil: the statement is then planned as any other.
func (pl *Planner) LoadTarget(snap *rules.Snapshot, n *ast.LoadDataStmt) *rules.Table {
	name := n.Table.Schema.O
	if name == "" {
		name = pl.DB
	}
	db, ok := snap.Database(name)
	if !ok {
		return nil // Plan says what is wrong with it
	}
	t := db.Table(n.Table.Name.O)
	if t == nil || t.Kind != rules.KindSharded && t.Kind != rules.KindBroadcast {
		return nil
	}
	return t
}

// UnnamedInsertTable is the sharded table of an INSERT ... VALUES without a column list
// (what mariadb-dump writes), and its database: the session names its columns, read from
// the table's first copy, so that its rows can be placed by their shard key. It is nil for
// any other INSERT, and for one the user may not run (Plan refuses it).
func (pl *Planner) UnnamedInsertTable(snap *rules.Snapshot, ins *ast.InsertStmt) (*rules.Database, *rules.Table) {
	if len(ins.Columns) > 0 || ins.Setlist || ins.Select != nil || ins.Table == nil || ins.Table.TableRefs == nil {
		return nil, nil
	}
	ts, ok := ins.Table.TableRefs.Left.(*ast.TableSource)
	if !ok {
		return nil, nil
	}
	tn, ok := ts.Source.(*ast.TableName)
	if !ok {
		return nil, nil
	}
	dbName := pl.DB
	if tn.Schema.O != "" {
		dbName = tn.Schema.O
	}
	db, ok := snap.Database(dbName)
	if !ok || !db.Configured(tn.Name.O) {
		return nil, nil
	}
	t := db.Table(tn.Name.O)
	if t.Kind != rules.KindSharded {
		return nil, nil
	}
	if u, ok := snap.User(pl.User); !ok || !u.CanUse(db.Name) {
		return nil, nil // Plan refuses it with the right error
	}
	return db, t
}
