package router

import (
	"context"

	"github.com/shardproxy/shardproxy/router/planner"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Stored programs the parser cannot read (see unparsed.go): CREATE [OR REPLACE]
// [DEFINER = ...] TRIGGER | FUNCTION | EVENT and DROP TRIGGER | FUNCTION | EVENT [IF EXISTS].
// Their bodies run with the privileges of their definer, so each is taken apart and its
// body checked as a procedure body (router/planner: ParseProgram in program_parse.go,
// Planner.CheckProgram in program_targets.go, the barrier in stored.go):
//
//   - the body is planned as the body of CREATE PROCEDURE (a function's RETURN read as
//     SELECT: both evaluate the same expression); the text is sent only when the plan
//     leaves the body as written (no names the proxy must rewrite);
//   - any DEFINER clause is removed: the program is defined by the proxy's backend account
//     (CURRENT_USER), whose privileges the barrier already stands in front of; a definer the
//     client names (root, say) is never sent;
//   - a function must be a stored function with a parameter list, RETURNS a plain data type
//     (UDFs, RETURNS ... SONAME, load a library on the backend and stay refused);
//   - an event's schedule may hold only literals, words and operators (no subquery, no
//     call with arguments);
//   - names are unqualified: they live in the session's database;
//   - a trigger's table is a single table of the session's database.
//
// In a database with sharded tables, or tables on several shards, the program is created on
// the shards where it must exist and its body may name only rows that are there
// (stored_sharded.go; router/planner's Planner.ProgramTargets).

// storedProgram runs a CREATE or DROP of a trigger, a stored function or an event, or an
// ALTER of a function, procedure or event, taken apart and checked by router/planner
// (program_parse.go, program_targets.go); ok is false when sql is none of them.
func (s *Session) storedProgram(ctx context.Context, snap *rules.Snapshot, sql string, w wire.PacketWriter) (ok bool, err error) {
	shape, ok, err := planner.ParseProgram(sql)
	if !ok {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	if s.db == "" {
		return true, sqlerr.New(sqlerr.ErNoDB, "No database selected")
	}
	db, found := snap.Database(s.db)
	if !found {
		return true, sqlerr.New(sqlerr.ErNoDB, "No database selected")
	}
	if db.Sharded() || len(db.Shards()) > 1 {
		return true, s.shardedProgram(ctx, snap, db, shape, sql, w) // stored_sharded.go
	}
	if err := s.planner(snap).CheckProgram(snap, db, shape, s.parseOne); err != nil {
		return true, err
	}
	s.route = RouteSingle
	s.publish(sql)
	defer s.publish("")
	return true, s.withDeadline(ctx, snap, hintDeadline{}, func(ctx context.Context) error {
		if err := s.checkWrite(ctx, db.DefaultShard); err != nil {
			return err
		}
		return lostWrite(s.run(ctx, snap, db.DefaultShard, shape.Send, false, w))
	})
}
