package router

import (
	"context"

	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/router/planner"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// MariaDB-only shapes of everyday statements the TiDB parser cannot read (see unparsed.go):
// MariaDB-only DDL (CREATE OR REPLACE TABLE | SEQUENCE, WITH SYSTEM VERSIONING, ALTER TABLE
// ADD | DROP SYSTEM VERSIONING), MariaDB's column types (UUID, INET4, INET6, INVISIBLE),
// SELECT ... INTO @var, SHOW CREATE TRIGGER | FUNCTION | EVENT and SETVAL with more than two
// arguments. Each is taken apart and planned through a statement the parser reads by
// router/planner (mariadb_ddl.go, mariadb_types.go, mariadb_shapes.go there: a
// planner.ShapePlan); the session runs what it planned. Each method's ok is false when sql
// does not have its shape.

// mariadbDDLStmt runs a MariaDB-only DDL shape (planner.Planner.MariaDBDDL): fanned out to
// every physical table, or on one shard.
func (s *Session) mariadbDDLStmt(ctx context.Context, snap *rules.Snapshot, sql string, w wire.PacketWriter) (ok bool, err error) {
	sp, ok, err := s.planner(snap).MariaDBDDL(snap, sql, s.parseOne)
	if !ok || err != nil {
		return ok, err
	}
	s.publish(sql)
	defer s.publish("")
	return true, s.withDeadline(ctx, snap, statementHint(sp.Stmt), func(ctx context.Context) error {
		if sp.DDL != nil {
			s.route = RouteDDL
			return lostWrite(s.fanOutDDL(ctx, snap, sp.DDL, false, w))
		}
		if sp.Route.Sticky {
			s.sticky = true
		}
		s.route = RouteSingle
		return s.runRead(ctx, snap, sp.Route.Shard, sp.SQL, false, w)
	})
}

// columnTypes runs a CREATE or ALTER TABLE using MariaDB-only column types
// (planner.Planner.ColumnTypes): the client's text, on the one shard its equivalent goes to.
func (s *Session) columnTypes(ctx context.Context, snap *rules.Snapshot, sql string, w wire.PacketWriter) (ok bool, err error) {
	sp, ok, err := s.planner(snap).ColumnTypes(snap, sql, s.parseOne)
	if !ok || err != nil {
		return ok, err
	}
	if sp.Route.Sticky {
		s.sticky = true
	}
	return true, s.runShapeRead(ctx, snap, sql, sp, w)
}

// selectInto runs SELECT ... INTO @vars (planner.Planner.SelectInto) on the shard where the
// session's user variables live, which keeps the backend session from then on.
func (s *Session) selectInto(ctx context.Context, snap *rules.Snapshot, sql string, w wire.PacketWriter) (ok bool, err error) {
	sp, ok, err := s.planner(snap).SelectInto(snap, sql, s.parseOne)
	if !ok || err != nil {
		return ok, err
	}
	s.sticky = true
	return true, s.runShapeRead(ctx, snap, sql, sp, w)
}

// showCreate runs SHOW CREATE TRIGGER | FUNCTION | EVENT name
// (planner.Planner.ShowCreateRoutine), its answer's names made logical.
func (s *Session) showCreate(ctx context.Context, snap *rules.Snapshot, sql string, w wire.PacketWriter) (ok bool, err error) {
	sp, ok, err := s.planner(snap).ShowCreateRoutine(snap, sql, s.parseOne)
	if !ok || err != nil {
		return ok, err
	}
	if !sp.Route.Names.Empty() {
		w = introspect.NewRows(w, sp.Route.Names, false)
	}
	return true, s.runShapeRead(ctx, snap, sql, sp, w)
}

// runShapeRead runs a planned shape's text (the client's sql) as a read on its shard, under
// the statement's deadline, shown in the process list while it runs.
func (s *Session) runShapeRead(ctx context.Context, snap *rules.Snapshot, sql string, sp planner.ShapePlan, w wire.PacketWriter) error {
	s.route = RouteSingle
	s.publish(sql)
	defer s.publish("")
	return s.withDeadline(ctx, snap, statementHint(sp.Stmt), func(ctx context.Context) error {
		return s.runRead(ctx, snap, sp.Route.Shard, sp.SQL, false, w)
	})
}

// setval runs MariaDB's SETVAL(sequence, n, is_used [, round]) (planner.Planner.Setval): the
// client's text, a write on the sequence's shard.
func (s *Session) setval(ctx context.Context, snap *rules.Snapshot, sql string, w wire.PacketWriter) (ok bool, err error) {
	sp, ok, err := s.planner(snap).Setval(snap, sql, s.parseOne)
	if !ok || err != nil {
		return ok, err
	}
	s.route = RouteSingle
	s.publish(sql)
	defer s.publish("")
	return true, s.withDeadline(ctx, snap, statementHint(sp.Stmt), func(ctx context.Context) error {
		if err := s.checkWrite(ctx, sp.Route.Shard); err != nil {
			return err
		}
		return lostWrite(s.run(ctx, snap, sp.Route.Shard, sp.SQL, false, w))
	})
}
