package router

import (
	"context"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/shardproxy/shardproxy/router/barrier"
	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// The TiDB parser does not know every MariaDB statement. Text it cannot read reaches a
// backend only when it has one of these shapes, each taken apart so that the parser reads
// every part and the barrier (router/barrier) and the router see it:
//
//   - INSERT, REPLACE or DELETE ... RETURNING expressions (GORM sends it to MariaDB): the
//     statement is planned without the clause, the clause's expressions are planned as a
//     SELECT list, and the planned statement goes to its one shard with the clause put back
//     (returning.go);
//   - SET STATEMENT var = value [, ...] FOR statement: the assignments must be session
//     system variables set to constants, the statement one a direct query could run on one
//     shard; it goes there as SET STATEMENT ... FOR <planned statement>;
//   - EXECUTE IMMEDIATE 'text' | @var [USING ...]: emulated, the text run as a direct
//     statement (execute_immediate.go);
//   - CREATE OR REPLACE [TEMPORARY] TABLE and SELECT ... INTO @var, among the MariaDB-only
//     shapes router/planner plans (mariadb_shapes.go runs them).
//
// Anything else (CREATE OR REPLACE USER, HANDLER, system-versioned DDL, ...) is refused:
// with the parser's syntax error (1064), or 1227 when the text looks like administration.

// runUnparsed runs sql, which the parser rejected with parseErr, if it has an allowed shape.
func (s *Session) runUnparsed(ctx context.Context, snap *rules.Snapshot, sql string, parseErr error, w wire.PacketWriter) error {
	if st, text, clause, ok := planner.ReturningStmt(sql, s.parseOne); ok {
		if err := s.planner(snap).CheckReturning(snap, clause, s.parseOne); err != nil {
			return err
		}
		s.publish(sql)
		defer s.publish("")
		return s.withDeadline(ctx, snap, statementHint(st), func(ctx context.Context) error {
			return s.execReturning(ctx, snap, st, text, clause, w)
		})
	}
	if assign, text, ok := barrier.SplitSetStatement(sql); ok {
		return s.setStatement(ctx, snap, sql, assign, text, w)
	}
	for _, shape := range []func(context.Context, *rules.Snapshot, string, wire.PacketWriter) (bool, error){
		s.executeImmediate, s.mariadbDDLStmt, s.columnTypes, s.selectInto, s.showCreate, s.packageStatus, s.setval, s.storedProgram, // execute_immediate.go, mariadb_shapes.go, showroutines.go, stored_programs.go
	} {
		if ok, err := shape(ctx, snap, sql, w); ok {
			return err
		}
	}
	return refuseUnparsed(sql, parseErr)
}

// refuseUnparsed is the answer to text of no allowed shape.
func refuseUnparsed(sql string, parseErr error) error {
	if err := barrier.Unparsed(sql); err != nil {
		return err
	}
	return parseErr
}

// setStatement runs MariaDB's SET STATEMENT assign FOR text (all of it is sql), as
// planner.Planner.SetStatement planned it.
func (s *Session) setStatement(ctx context.Context, snap *rules.Snapshot, sql, assign, text string, w wire.PacketWriter) error {
	sp, err := s.planner(snap).SetStatement(snap, s.vars.facts(), assign, text, s.parseOne)
	if err != nil {
		return err
	}
	st, p, out := sp.Stmt, sp.Route, sp.SQL
	s.publish(sql)
	defer s.publish("")
	if p.Sticky {
		s.sticky = true
	}
	if !p.Columns.Empty() {
		w = introspect.NewColumns(w, p.Columns)
	}
	return s.withDeadline(ctx, snap, statementHint(st), func(ctx context.Context) error {
		if !planner.IsWrite(st) {
			return s.runRead(ctx, snap, p.Shard, out, false, w)
		}
		if err := s.checkWrite(ctx, p.Shard); err != nil {
			return err
		}
		return lostWrite(s.run(ctx, snap, p.Shard, out, false, w))
	})
}
