package router

import (
	"time"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// planner plans statements for one session: a read-only copy of what planning reads of the
// session, and nothing else. It does no I/O and changes nothing of the session; a statement
// is planned against the snapshot the statement runs under (the planner holds no other).
type planner struct {
	db           string // the session's current logical database, "" for none
	user         string
	connID       uint32 // CONNECTION_ID()
	lastInsertID uint64
	diag         diagnostics // of the previous statement (ROW_COUNT(), @@warning_count)
	sticky       bool        // the backend connection knows FOUND_ROWS() better
	restoreFlags format.RestoreFlags
	describing   bool          // at prepare time: describe a scatter statement from one shard
	deadline     time.Duration // the statement deadline @@max_execution_time shows
	version      string        // VERSION() and @@version as the proxy announces them
	maxPkt       int64         // @@max_allowed_packet as the proxy announces it
	lists        bigLists      // the literal lists cut out of the statement before parsing
	locked       bool          // the session holds LOCK TABLES on sharded tables (lock.go)
	unpruned     bool          // a scatter template: a SELECT goes to every slot, whatever its key values (scatter_prepared.go)
	slots        []int         // a scatter template of tables per slot: the slots it goes to (nil: every slot)
}

// planner is the session's read-only view for planning a statement under snap.
func (s *Session) planner(snap *rules.Snapshot) *planner {
	d, _ := s.vars.deadline(snap, s.user, s.db, hintDeadline{})
	return &planner{db: s.db, user: s.user, connID: s.info.ConnID, lastInsertID: s.ids.last, diag: s.diag.last,
		sticky: s.sticky, restoreFlags: s.vars.restoreFlags, deadline: d,
		version: s.r.version, maxPkt: s.r.maxPkt, lists: s.lists, locked: s.locks.locked()}
}

// plan decides where a statement goes under snap (see planner.plan).
func (s *Session) plan(snap *rules.Snapshot, st ast.StmtNode, text string, params []wire.Param) (plan.Primitive, error) {
	return s.planner(snap).plan(snap, st, text, params)
}

// planStatement plans a client's statement as a query runs it: SHOW DATABASES answered by
// the proxy (local.go), DDL on sharded or broadcast tables as a fan-out (ddl.go), anything
// else by plan.
func (s *Session) planStatement(snap *rules.Snapshot, st ast.StmtNode, text string) (plan.Primitive, error) {
	pl := s.planner(snap)
	if n, ok := st.(*ast.ShowStmt); ok && n.Tp == ast.ShowDatabases {
		res, err := pl.showDatabases(snap, n)
		if err != nil {
			return nil, err
		}
		return &plan.Local{What: "SHOW DATABASES", Columns: res.cols, Rows: res.rows}, nil
	}
	if isTableDDL(st) {
		d, err := pl.planTableDDL(snap, st)
		if err != nil {
			return nil, err
		}
		if d != nil {
			return d, nil
		}
	}
	return pl.plan(snap, st, text, nil)
}

// describe plans a statement at prepare time, with no parameters bound: a statement routed
// by its parameters is described from one shard (see planner.describing).
func (s *Session) describe(snap *rules.Snapshot, st ast.StmtNode, text string) (plan.Primitive, error) {
	pl := s.planner(snap)
	pl.describing = true
	return pl.plan(snap, st, text, nil)
}
