package router

import (
	"context"
	"slices"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Stored programs in a database whose rows live on several shards (stored_programs.go takes
// them apart; stored_scope.go says what their bodies may name). Each is created where it
// must exist to give the answer one MariaDB would:
//
//   - a trigger on a sharded table: on every shard holding its slots, where it fires for the
//     rows that shard holds;
//   - a trigger on a broadcast table: on every copy, each firing for the same write;
//   - a trigger on a single table, an event: on the default shard (an event there fires
//     once, as on one server);
//   - a stored function: on every shard of the database, so that a statement routed to any
//     shard (or every shard) may call it.
//
// The text is the client's on every shard (names are unqualified and bodies name no
// table-per-slot table), except for a trigger on a table-per-slot table, which gets one copy
// per slot table (stored_slots.go). CREATE runs on one shard after the other through the DDL
// fan-out's failure handling (ddl.go): a partial failure names the shards where the program
// exists and those where it does not. DROP runs on every shard of the database; a shard
// answering that the program does not exist there counts as done unless every shard does.
// The listings (SHOW TRIGGERS, SHOW CREATE ..., SHOW FUNCTION STATUS, information_schema)
// read the default shard, which holds one copy of each: a trigger on a sharded table with no
// slot there is refused.

// missingProgram are the codes of DROP TRIGGER | FUNCTION | EVENT of a program that does not
// exist.
var missingProgram = []uint16{1360, 1305, 1539}

// shardedProgram runs a CREATE or DROP of a trigger, function or event in a database with
// rows on several shards.
func (s *Session) shardedProgram(ctx context.Context, snap *rules.Snapshot, db *rules.Database, shape programShape, sql string, w wire.PacketWriter) error {
	targets, err := s.programTargets(snap, db, shape)
	if err != nil {
		return err
	}
	s.publish(sql)
	defer s.publish("")
	if len(targets) == 1 {
		s.route = RouteSingle
		return s.withDeadline(ctx, snap, hintDeadline{}, func(ctx context.Context) error {
			if err := s.checkWrite(ctx, targets[0].shard); err != nil {
				return err
			}
			return lostWrite(s.run(ctx, snap, targets[0].shard, targets[0].sql, false, w))
		})
	}
	s.route = RouteDDL
	return s.withDeadline(ctx, snap, hintDeadline{}, func(ctx context.Context) error {
		if err := s.ddlInTxn(); err != nil {
			return err
		}
		var progress ddlProgress
		var missing error
		for _, t := range targets {
			err := s.run(ctx, snap, t.shard, t.sql, false, engine.Discard{})
			if e, ok := sqlerr.As(err); ok && shape.drop && slices.Contains(missingProgram, e.Code) {
				missing = err // not there: nothing to drop on this shard
			} else if progress.add(t.where, err) && ctx.Err() != nil {
				break
			}
			if shape.drop && shape.kind == "TRIGGER" {
				s.dropSlotTriggers(ctx, snap, db, t.shard, shape.trig.name, &progress) // stored_slots.go
			}
		}
		if err := progress.err(); err != nil {
			return lostWrite(err)
		}
		if len(progress.done) == 0 && missing != nil {
			return missing
		}
		return s.writeOK(w, false)
	})
}

// programTarget is one statement of a stored program's CREATE, ALTER or DROP: where it runs.
type programTarget struct {
	shard *rules.Shard
	sql   string
	where string // for messages: the shard, and the slot table of a trigger
}

// on is the targets running shape's statement as sent on each of shards.
func on(shards []*rules.Shard, shape programShape) []programTarget {
	out := make([]programTarget, len(shards))
	for i, sh := range shards {
		out[i] = programTarget{shard: sh, sql: shape.send, where: sh.Name}
	}
	return out
}

// programTargets checks shape's body and table against where the program must live and
// returns the statements that create it there.
func (s *Session) programTargets(snap *rules.Snapshot, db *rules.Database, shape programShape) ([]programTarget, error) {
	if shape.drop {
		return on(db.Shards(), shape), nil
	}
	sc := planner.ProgramScope{What: "stored function", Home: planner.HomeEveryShard}
	targets := on(db.Shards(), shape)
	switch shape.kind {
	case "PROCEDURE": // ALTER PROCEDURE: no body
		return on([]*rules.Shard{db.DefaultShard}, shape), nil
	case "FUNCTION":
		if shape.check == "" { // ALTER FUNCTION: no body
			return targets, nil
		}
	case "EVENT":
		sc = planner.ProgramScope{What: "event", Home: planner.HomeDefault}
		targets = on([]*rules.Shard{db.DefaultShard}, shape)
	case "TRIGGER":
		t := db.Table(shape.table)
		sc = planner.ProgramScope{What: "trigger", Table: t, Event: shape.event}
		switch t.Kind {
		case rules.KindSingle:
			sc.Home, targets = planner.HomeDefault, on([]*rules.Shard{db.DefaultShard}, shape)
		case rules.KindBroadcast:
			sc.Home = planner.HomeBroadcast
		case rules.KindSharded:
			sc.Home, targets = planner.HomeSharded, nil
			var shards []*rules.Shard
			for _, p := range t.Placements() {
				shards = append(shards, p.Shard)
				targets = append(targets, programTarget{shard: p.Shard, sql: slotTriggerText(shape, shape.body, t, p), where: p.Shard.Name + ":" + p.Table})
			}
			if !slices.Contains(shards, db.DefaultShard) {
				return nil, sqlerr.NotSupported("a trigger on the sharded table %s, which has no slot on the default shard %s: SHOW CREATE TRIGGER, information_schema and mariadb-dump read the default shard and would not find it", t.Name, db.DefaultShard.Name)
			}
		}
	}
	if shape.check == "" { // ALTER EVENT without DO
		return targets, nil
	}
	st, err := s.parseOne(shape.check)
	if err != nil {
		return nil, err
	}
	proc, ok := st.(*ast.ProcedureInfo)
	if !ok {
		return nil, syntaxError(errProgramShape)
	}
	if err := s.planner(snap).CheckRoutineBody(snap, proc.ProcedureBody); err != nil { // the barrier
		return nil, err
	}
	slotTables, err := planner.CheckScope(db, proc.ProcedureBody, sc)
	if err != nil {
		return nil, err
	}
	if len(slotTables) > 0 { // a trigger on a table per slot: each copy names its slot's tables
		return s.slotTargets(db, shape, sc.Table, slotTables)
	}
	return targets, nil
}
