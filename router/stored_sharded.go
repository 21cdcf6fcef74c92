package router

import (
	"context"
	"slices"
	"strings"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Stored programs in a database whose rows live on several shards (router/planner takes them
// apart, program_parse.go, and says what their bodies may name, stored.go). Each is created
// where it must exist to give the answer one MariaDB would:
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
// per slot table. Where each goes, and what its body may name, is router/planner's
// (Planner.ProgramTargets: program_targets.go, stored.go). CREATE runs on one shard after
// the other through the DDL fan-out's failure handling (ddl.go): a partial failure names the
// shards where the program exists and those where it does not. DROP runs on every shard of
// the database; a shard answering that the program does not exist there counts as done
// unless every shard does.
// The listings (SHOW TRIGGERS, SHOW CREATE ..., SHOW FUNCTION STATUS, information_schema)
// read the default shard, which holds one copy of each: a trigger on a sharded table with no
// slot there is refused.

// missingProgram are the codes of DROP TRIGGER | FUNCTION | EVENT of a program that does not
// exist.
var missingProgram = []uint16{1360, 1305, 1539}

// shardedProgram runs a CREATE or DROP of a trigger, function or event in a database with
// rows on several shards.
func (s *Session) shardedProgram(ctx context.Context, snap *rules.Snapshot, db *rules.Database, shape planner.ProgramShape, sql string, w wire.PacketWriter) error {
	targets, err := s.planner(snap).ProgramTargets(snap, db, shape, s.parseOne)
	if err != nil {
		return err
	}
	s.publish(sql)
	defer s.publish("")
	if len(targets) == 1 {
		s.route = RouteSingle
		return s.withDeadline(ctx, snap, hintDeadline{}, func(ctx context.Context) error {
			if err := s.checkWrite(ctx, targets[0].Shard); err != nil {
				return err
			}
			return lostWrite(s.run(ctx, snap, targets[0].Shard, targets[0].SQL, false, w))
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
			err := s.run(ctx, snap, t.Shard, t.SQL, false, engine.Discard{})
			if e, ok := sqlerr.As(err); ok && shape.Drop && slices.Contains(missingProgram, e.Code) {
				missing = err // not there: nothing to drop on this shard
			} else if progress.add(t.Where, err) && ctx.Err() != nil {
				break
			}
			if shape.Drop && shape.Kind == "TRIGGER" {
				s.dropSlotTriggers(ctx, snap, db, t.Shard, shape.Name(), &progress)
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

// dropSlotTriggers drops, on shard, the copies of trigger name on later slot tables of
// table-per-slot tables: the ones named name_SSSS on the table of slot SSSS (see
// planner.SlotTriggerName). Outcomes are
// recorded in progress.
func (s *Session) dropSlotTriggers(ctx context.Context, snap *rules.Snapshot, db *rules.Database, shard *rules.Shard, name string, progress *ddlProgress) {
	var pairs []string
	for _, tn := range db.TableNames() {
		t := db.Table(tn)
		if t.Kind != rules.KindSharded || !t.TablePerSlot {
			continue
		}
		for _, p := range t.Placements() {
			if p.Shard == shard {
				if n := planner.SlotTriggerName(name, t, p); n != name {
					pairs = append(pairs, "("+wire.QuoteString(n)+", "+wire.QuoteString(p.Table)+")")
				}
			}
		}
	}
	if len(pairs) == 0 {
		return
	}
	c, err := s.acquire(ctx, snap, shard)
	if err != nil {
		progress.add(shard.Name, err)
		return
	}
	rows, err := engine.QueryRows(ctx, c, "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND (TRIGGER_NAME, EVENT_OBJECT_TABLE) IN ("+strings.Join(pairs, ", ")+")")
	if err = s.finish(shard, c, engine.Outcome{Status: s.status}, err); err != nil {
		progress.add(shard.Name, err)
		return
	}
	for _, r := range rows {
		if len(r) != 2 || r[0] == nil || r[1] == nil {
			continue
		}
		err := s.run(ctx, snap, shard, "DROP TRIGGER "+quoteName(*r[0]), false, engine.Discard{})
		progress.add(shard.Name+":"+*r[1], err)
	}
}
