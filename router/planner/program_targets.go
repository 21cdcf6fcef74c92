package planner

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// ProgramTarget is one statement of a stored program's CREATE, ALTER or DROP: where it runs.
type ProgramTarget struct {
	Shard *rules.Shard
	SQL   string
	Where string // for messages: the shard, and the slot table of a trigger
}

// programOn is the targets running shape's statement as sent on each of shards.
func programOn(shards []*rules.Shard, shape ProgramShape) []ProgramTarget {
	out := make([]ProgramTarget, len(shards))
	for i, sh := range shards {
		out[i] = ProgramTarget{Shard: sh, SQL: shape.Send, Where: sh.Name}
	}
	return out
}

// ProgramTargets checks shape's body and table against where a program in db, a database
// with rows on several shards, must live, and returns the statements that create it there
// (drop it, alter it). parse reads the body as the session's parser does.
func (pl *Planner) ProgramTargets(snap *rules.Snapshot, db *rules.Database, shape ProgramShape, parse ParseFunc) ([]ProgramTarget, error) {
	if shape.Drop {
		return programOn(db.Shards(), shape), nil
	}
	sc := ProgramScope{What: "stored function", Home: HomeEveryShard}
	targets := programOn(db.Shards(), shape)
	switch shape.Kind {
	case "PROCEDURE": // ALTER PROCEDURE: no body
		return programOn([]*rules.Shard{db.DefaultShard}, shape), nil
	case "FUNCTION":
		if shape.check == "" { // ALTER FUNCTION: no body
			return targets, nil
		}
	case "EVENT":
		sc = ProgramScope{What: "event", Home: HomeDefault}
		targets = programOn([]*rules.Shard{db.DefaultShard}, shape)
	case "TRIGGER":
		t := db.Table(shape.table)
		sc = ProgramScope{What: "trigger", Table: t, Event: shape.event}
		switch t.Kind {
		case rules.KindSingle:
			sc.Home, targets = HomeDefault, programOn([]*rules.Shard{db.DefaultShard}, shape)
		case rules.KindBroadcast:
			sc.Home = HomeBroadcast
		case rules.KindSharded:
			sc.Home, targets = HomeSharded, nil
			var shards []*rules.Shard
			for _, p := range t.Placements() {
				shards = append(shards, p.Shard)
				targets = append(targets, ProgramTarget{Shard: p.Shard, SQL: slotTriggerText(shape, shape.body, t, p), Where: p.Shard.Name + ":" + p.Table})
			}
			if !slices.Contains(shards, db.DefaultShard) {
				return nil, sqlerr.NotSupported("a trigger on the sharded table %s, which has no slot on the default shard %s: SHOW CREATE TRIGGER, information_schema and mariadb-dump read the default shard and would not find it", t.Name, db.DefaultShard.Name)
			}
		}
	}
	if shape.check == "" { // ALTER EVENT without DO
		return targets, nil
	}
	st, err := parse(shape.check)
	if err != nil {
		return nil, err
	}
	proc, ok := st.(*ast.ProcedureInfo)
	if !ok {
		return nil, SyntaxError(errProgramShape)
	}
	if err := pl.CheckRoutineBody(snap, proc.ProcedureBody); err != nil { // the barrier
		return nil, err
	}
	slotTables, err := CheckScope(db, proc.ProcedureBody, sc)
	if err != nil {
		return nil, err
	}
	if len(slotTables) > 0 { // a trigger on a table per slot: each copy names its slot's tables
		return pl.slotTargets(db, shape, sc.Table, slotTables, parse)
	}
	return targets, nil
}

// CheckProgram plans the parts of shape, a program in db, a database on one shard: the body
// as a procedure's, the trigger's table. parse reads them as the session's parser does.
func (pl *Planner) CheckProgram(snap *rules.Snapshot, db *rules.Database, shape ProgramShape, parse ParseFunc) error {
	if shape.table != "" {
		if t := db.Table(strings.ToLower(shape.table)); t.Kind != rules.KindSingle {
			return sqlerr.NotSupported("a trigger on the %s table %s: it would have to exist on every physical table", t.Kind, shape.table)
		}
		text := "SELECT 1 FROM " + wire.QuoteIdent(shape.table)
		st, err := parse(text)
		if err != nil {
			return err
		}
		p, err := pl.Plan(snap, st, text, nil)
		if err != nil {
			return err
		}
		if r, ok := plan.RouteOf(p); !ok || r.Shard != db.DefaultShard || !r.Names.Empty() {
			return sqlerr.NotSupported("a trigger on %s: not a table of the database's default shard", shape.table)
		}
	}
	if shape.check == "" { // DROP, ALTER of characteristics
		return nil
	}
	st, err := parse(shape.check)
	if err != nil {
		return err
	}
	if _, isProc := st.(*ast.ProcedureInfo); !isProc {
		return SyntaxError(errProgramShape)
	}
	p, err := pl.Plan(snap, st, shape.check, nil)
	if err != nil {
		return err
	}
	if r, ok := plan.RouteOf(p); !ok || r.SQL != shape.check || r.Shard != db.DefaultShard {
		return sqlerr.NotSupported("a %s body naming what the proxy must rewrite (qualified names, session functions, tables of other shards): name only tables of the session's database, unqualified", strings.ToLower(shape.Kind))
	}
	return nil
}

// Triggers on table-per-slot tables. Each slot's physical table (ledger_0007) gets a
// trigger of its own, and trigger names are unique in a database, so a shard holding several
// slot tables needs several names: the trigger on the shard's first slot table keeps the
// client's name, which is the copy the listings show (router/introspect shows that slot
// table under the logical name and hides the others, and the rows of their triggers with
// them); the trigger on a later slot table is named name_SSSS after its slot. A FOLLOWS or
// PRECEDES names the other trigger's copy on the same slot table. A body naming
// table-per-slot tables of the same scheme (pinned to the firing row's key, stored.go) names
// in each copy that slot's tables, backquoted. SHOW CREATE TRIGGER of the copy on a shard's
// first slot table gets its slot tables turned back into the logical ones
// (introspect.Names.Logical). DROP TRIGGER drops the later slots' copies by their names and
// tables (the session's dropSlotTriggers).

// slotTriggerText is the CREATE TRIGGER of shape, with body, on the physical table of
// placement p of t.
func slotTriggerText(shape ProgramShape, body string, t *rules.Table, p rules.Placement) string {
	h := shape.trig
	if !t.TablePerSlot {
		return shape.Send
	}
	var b strings.Builder
	b.WriteString(h.head + " TRIGGER " + h.ifNotExists + wire.QuoteIdent(SlotTriggerName(h.name, t, p)) + " " + h.timing + " " + h.event +
		" ON " + wire.QuoteIdent(p.Table) + " FOR EACH ROW ")
	if h.order != "" {
		b.WriteString(h.order + " " + wire.QuoteIdent(SlotTriggerName(h.other, t, p)) + " ")
	}
	b.WriteString(body)
	return b.String()
}

// SlotTriggerName is the name of trigger name's copy on the physical table of placement p:
// name on the first slot table of t on p's shard, name_SSSS on the others.
func SlotTriggerName(name string, t *rules.Table, p rules.Placement) string {
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

// slotTargets are the copies of a trigger on the table-per-slot table t whose body names the
// table-per-slot tables names (of t's scheme, pinned to the firing row's key, so the rows it
// touches are in the firing row's slot): each copy names its own slot's tables. The names are
// replaced in the text, backquoted; that the replaced words are exactly the body's table
// names (and their column qualifiers) is checked by parsing the result and comparing it with
// the parsed body renamed, so a column, alias or string spelled like a table is never touched
// unseen: a body where they cannot be told apart is refused.
func (pl *Planner) slotTargets(db *rules.Database, shape ProgramShape, t *rules.Table, names []string, parse ParseFunc) ([]ProgramTarget, error) {
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
			b.WriteString(wire.QuoteIdent(tables[toks[k].ident()].PhysicalName(slot)))
			last = toks[k].end
		}
		b.WriteString(shape.body[last:])
		return b.String()
	}
	if err := pl.checkSlotBody(shape.body, body(0), tables, parse); err != nil {
		return nil, err
	}
	var out []ProgramTarget
	for _, p := range t.Placements() {
		out = append(out, ProgramTarget{Shard: p.Shard, SQL: slotTriggerText(shape, body(p.Slot), t, p), Where: p.Shard.Name + ":" + p.Table})
	}
	return out, nil
}

// checkSlotBody checks that renamed, the body with its table-per-slot tables named as slot 0's,
// reads as body with exactly its table names and column qualifiers of those tables renamed.
func (pl *Planner) checkSlotBody(body, renamed string, tables map[string]*rules.Table, parse ParseFunc) error {
	refuse := sqlerr.NotSupported("a trigger body naming the table-per-slot tables %s where a word spelled like one is not that table (an alias, column or function of that name): rename it", strings.Join(slices.Sorted(maps.Keys(tables)), ", "))
	restore := func(text string, rename bool) (string, error) {
		st, err := parse("CREATE PROCEDURE `shardproxy_check`() " + text)
		if err != nil {
			return "", err
		}
		if rename {
			WalkNodes(reflect.ValueOf(st), 0, func(n ast.Node) bool {
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
		return RestoreSQL(pl.RestoreFlags, pl.Lists, st)
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
