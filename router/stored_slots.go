package router

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Triggers on table-per-slot tables (stored_sharded.go). Each slot's physical table
// (ledger_0007) gets a trigger of its own, and trigger names are unique in a database, so a
// shard holding several slot tables needs several names: the trigger on the shard's first
// slot table keeps the client's name, which is the copy the listings show (router/introspect
// shows that slot table under the logical name and hides the others, and the rows of their
// triggers with them); the trigger on a later slot table is named name_SSSS after its slot. A
// FOLLOWS or PRECEDES names the other trigger's copy on the same slot table. A body naming
// table-per-slot tables of the same scheme (pinned to the firing row's key, stored_scope.go)
// names in each copy that slot's tables, backquoted. SHOW CREATE TRIGGER of the copy on a
// shard's first slot table gets its slot tables turned back into the logical ones
// (introspect.Names.Logical). DROP TRIGGER drops the later slots' copies by their names and
// tables.

// slotTriggerText is the CREATE TRIGGER of shape, with body, on the physical table of
// placement p of t.
func slotTriggerText(shape programShape, body string, t *rules.Table, p rules.Placement) string {
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
	b.WriteString(body)
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

// slotTargets are the copies of a trigger on the table-per-slot table t whose body names the
// table-per-slot tables names (of t's scheme, pinned to the firing row's key, so the rows it
// touches are in the firing row's slot): each copy names its own slot's tables. The names are
// replaced in the text, backquoted; that the replaced words are exactly the body's table
// names (and their column qualifiers) is checked by parsing the result and comparing it with
// the parsed body renamed, so a column, alias or string spelled like a table is never touched
// unseen: a body where they cannot be told apart is refused.
func (s *Session) slotTargets(db *rules.Database, shape programShape, t *rules.Table, names []string) ([]programTarget, error) {
	tables := map[string]*rules.Table{}
	for _, n := range names {
		tables[n] = db.Table(n)
	}
	toks := tokenize(shape.body)
	var at []int // the tokens naming the tables
	for k, tok := range toks {
		if tok.name() && tables[tok.ident()] != nil && (k == 0 || toks[k-1].text != ".") {
			at = append(at, k)
		}
	}
	body := func(slot int) string {
		var b strings.Builder
		last := 0
		for _, k := range at {
			b.WriteString(shape.body[last:toks[k].pos])
			b.WriteString(quoteName(tables[toks[k].ident()].PhysicalName(slot)))
			last = toks[k].end
		}
		b.WriteString(shape.body[last:])
		return b.String()
	}
	if err := s.checkSlotBody(shape.body, body(0), tables); err != nil {
		return nil, err
	}
	var out []programTarget
	for _, p := range t.Placements() {
		out = append(out, programTarget{shard: p.Shard, sql: slotTriggerText(shape, body(p.Slot), t, p), where: p.Shard.Name + ":" + p.Table})
	}
	return out, nil
}

// checkSlotBody checks that renamed, the body with its table-per-slot tables named as slot 0's,
// reads as body with exactly its table names and column qualifiers of those tables renamed.
func (s *Session) checkSlotBody(body, renamed string, tables map[string]*rules.Table) error {
	refuse := sqlerr.NotSupported("a trigger body naming the table-per-slot tables %s where a word spelled like one is not that table (an alias, column or function of that name): rename it", strings.Join(slices.Sorted(maps.Keys(tables)), ", "))
	restore := func(text string, rename bool) (string, error) {
		st, err := s.parseOne("CREATE PROCEDURE `shardproxy_check`() " + text)
		if err != nil {
			return "", err
		}
		if rename {
			planner.WalkNodes(reflect.ValueOf(st), 0, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.TableName:
					if t := tables[n.Name.O]; t != nil && n.Schema.O == "" {
						n.Name = ast.NewCIStr(t.PhysicalName(0))
					}
				case *ast.ColumnName:
					if t := tables[n.Table.O]; t != nil && n.Schema.O == "" {
						n.Table = ast.NewCIStr(t.PhysicalName(0))
					}
				}
				return true
			})
		}
		return planner.RestoreSQL(s.vars.restoreFlags, s.lists, st)
	}
	want, err := restore(body, true)
	if err != nil {
		return refuse
	}
	got, err := restore(renamed, false)
	if err != nil || got != want {
		return refuse
	}
	return nil
}
