package router

import (
	"context"
	"fmt"
	"strings"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// Triggers on table-per-slot tables (stored_sharded.go). Each slot's physical table
// (ledger_0007) gets a trigger of its own, and trigger names are unique in a database, so a
// shard holding several slot tables needs several names: the trigger on the shard's first
// slot table keeps the client's name, which is the copy the listings show (router/introspect
// shows that slot table under the logical name and hides the others, and the rows of their
// triggers with them); the trigger on a later slot table is named name_SSSS after its slot. A
// FOLLOWS or PRECEDES names the other trigger's copy on the same slot table. The body is the
// same on every slot table (stored_scope.go refuses bodies naming table-per-slot tables), so
// SHOW CREATE TRIGGER needs only its table turned back into the logical one
// (introspect.Names.Logical). DROP TRIGGER drops the later slots' copies by their names and
// tables.

// slotTriggerText is the CREATE TRIGGER of shape on the physical table of placement p of t.
func slotTriggerText(shape programShape, t *rules.Table, p rules.Placement) string {
	h := shape.trig
	if !t.TablePerSlot {
		return shape.send
	}
	var b strings.Builder
	b.WriteString(h.head + " TRIGGER " + h.ifNotExists + quoteName(slotTriggerName(h.name, t, p)) + " " + h.timing + " " + h.event +
		" ON " + quoteName(p.Table) + " FOR EACH ROW ")
	if h.order != "" {
		b.WriteString(h.order + " " + quoteName(slotTriggerName(h.other, t, p)) + " ")
	}
	b.WriteString(shape.body)
	return b.String()
}

// slotTriggerName is the name of trigger name's copy on the physical table of placement p:
// name on the first slot table of t on p's shard, name_SSSS on the others.
func slotTriggerName(name string, t *rules.Table, p rules.Placement) string {
	for _, q := range t.Placements() {
		if q.Shard == p.Shard {
			if q.Slot == p.Slot {
				return name
			}
			break
		}
	}
	return fmt.Sprintf("%s_%04d", name, p.Slot)
}

// dropSlotTriggers drops, on shard, the copies of trigger name on later slot tables of
// table-per-slot tables: the ones named name_SSSS on the table of slot SSSS. Outcomes are
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
				if n := slotTriggerName(name, t, p); n != name {
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
