package planner

import (
	"github.com/pingcap/tidb/pkg/parser/format"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// Prepared multi-shard writes: the branches of one its parameters do not change, kept from
// PREPARE and handed the values at each EXECUTE; one that embeds session values, analysed
// on a tree of its own and split at each EXECUTE.

// MultiRoute records a prepared multi-shard write that embeds session values (its
// branches' statements hold them), analysed on a tree of its own: each execution fills them
// in and splits it on that tree (ResolveWrite). It returns nil for a write that embeds none
// (NewWriteRoute keeps those) or asks about the previous statement. parse reads text as
// the session's parser does.
func (pl *Planner) MultiRoute(snap *rules.Snapshot, text string, parse ParseFunc) *BoundRoute {
	st, err := parse(text)
	if err != nil {
		return nil
	}
	a, err := pl.Analyze(snap, st)
	if err != nil || len(a.SessionVals) == 0 || a.Diagnostic || a.InfoSchema || pl.Locked {
		return nil
	}
	NumberParams(a.Markers)
	db, err := pl.StatementDB(snap, a)
	if err != nil {
		return nil
	}
	b := &BoundRoute{Snap: snap, Planner: pl, DB: pl.DB, Flags: pl.RestoreFlags, Stmt: st, Text: text, Refs: a.Refs, DB0: db, Analysis: a, Multi: true}
	b.BindVars(a)
	return b
}

// WriteRoute is a multi-shard write whose branches its parameters do not change, planned
// once at PREPARE: a write to a broadcast table, an UPDATE or DELETE whose WHERE names no
// shard key (or literal keys of several slots), a multi-row INSERT whose keys are literals.
// Each EXECUTE hands each branch statement its values; nothing is parsed or restored. It
// holds for the snapshot, database and restore flags it was planned under, without LOCK
// TABLES; a write that embeds session values gets none (MultiRoute). It is read-only once
// made.
type WriteRoute struct {
	snap  *rules.Snapshot
	db    string
	flags format.RestoreFlags
	w     *plan.MultiWrite
}

// NewWriteRoute keeps p, the prepare-time plan of a statement planned by pl under snap,
// when it is such a write; nil otherwise.
func (pl *Planner) NewWriteRoute(snap *rules.Snapshot, p plan.Primitive) *WriteRoute {
	w, ok := p.(*plan.MultiWrite)
	if !ok || w.Dynamic || w.Diagnostic || !w.Names.Empty() || pl.Locked {
		return nil
	}
	return &WriteRoute{snap: snap, db: pl.DB, flags: pl.RestoreFlags, w: w}
}

// Write is the write as planned at PREPARE (its branches without values).
func (r *WriteRoute) Write() *plan.MultiWrite { return r.w }

// Resolve is the write's plan for one execution: the branches with the execution's
// values, each statement given the ones it kept (as planning with the values gives them).
func (r *WriteRoute) Resolve(v ExecView, snap *rules.Snapshot, params []wire.Param) (*plan.MultiWrite, bool) {
	if r == nil || snap != r.snap || v.DB != r.db || v.Flags != r.flags || v.Locked {
		return nil, false
	}
	w := *r.w
	w.Branches = make([]plan.Branch, len(r.w.Branches))
	for i, b := range r.w.Branches {
		stmts := make([]plan.WriteStmt, len(b.Stmts))
		for j, ws := range b.Stmts {
			if params != nil {
				ws.Params = make([]wire.Param, len(ws.ParamIdx))
				for k, idx := range ws.ParamIdx {
					ws.Params[k] = params[idx]
				}
			}
			stmts[j] = ws
		}
		w.Branches[i] = plan.Branch{Shard: b.Shard, Stmts: stmts}
	}
	return &w, true
}
