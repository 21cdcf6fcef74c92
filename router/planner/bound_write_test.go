package planner

import (
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/router/planner/plantest"
	"github.com/shardproxy/shardproxy/wire"
)

// TestWriteRoute: a prepared multi-shard write whose branches its parameters do not change
// is kept from PREPARE and handed each execution's values, under the snapshot, database and
// restore flags it was planned under and without table locks; one embedding session values
// gets a bound route of its own (MultiRoute) instead.
func TestWriteRoute(t *testing.T) {
	snap := build(t, plantest.ShardedConfig())
	pl := &Planner{DB: "shop", User: "app", RestoreFlags: DefaultRestoreFlags, Describing: true}
	text := "UPDATE currencies SET rate = ? WHERE code = ?"
	p, err := pl.Plan(snap, parseStmt(t, text), text, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := pl.NewWriteRoute(snap, p)
	if r == nil || r.Write() != p {
		t.Fatalf("no write route for %s (%T)", text, p)
	}
	params := []wire.Param{{Type: mysql.MYSQL_TYPE_VAR_STRING, Value: []byte("\x011")}, {Type: mysql.MYSQL_TYPE_VAR_STRING, Value: []byte("\x03EUR")}}
	view := ExecView{DB: "shop", Flags: DefaultRestoreFlags}
	w, ok := r.Resolve(view, snap, params)
	if !ok || len(w.Branches) != 4 {
		t.Fatalf("Resolve: %v, %v", w, ok)
	}
	for _, b := range w.Branches {
		for _, ws := range b.Stmts {
			if len(ws.Params) != len(ws.ParamIdx) || len(ws.Params) != 2 || string(ws.Params[1].Value) != "\x03EUR" {
				t.Errorf("%s: params %v (indexes %v)", b.Shard.Name, ws.Params, ws.ParamIdx)
			}
		}
	}
	if r.Write().Branches[0].Stmts[0].Params != nil {
		t.Error("Resolve wrote the values into the kept write")
	}
	for name, v := range map[string]ExecView{
		"another database": {DB: "other", Flags: DefaultRestoreFlags},
		"other flags":      {DB: "shop"},
		"table locks":      {DB: "shop", Flags: DefaultRestoreFlags, Locked: true},
	} {
		if _, ok := r.Resolve(v, snap, params); ok {
			t.Errorf("%s: resolved", name)
		}
	}
	if _, ok := r.Resolve(view, build(t, plantest.ShardedConfig()), params); ok {
		t.Error("another snapshot: resolved")
	}
	var none *WriteRoute
	if _, ok := none.Resolve(view, snap, params); ok {
		t.Error("nil route resolved")
	}
	locked := *pl
	locked.Locked = true
	if locked.NewWriteRoute(snap, p) != nil {
		t.Error("a write route kept under table locks")
	}
	single := "UPDATE orders SET status = ? WHERE user_id = ?"
	if sp, err := pl.Plan(snap, parseStmt(t, single), single, nil); err != nil || pl.NewWriteRoute(snap, sp) != nil {
		t.Errorf("%s: %v, kept as a multi-shard write", single, err)
	}

	dyn := "UPDATE currencies SET note = DATABASE() WHERE code = ?"
	dp, err := pl.Plan(snap, parseStmt(t, dyn), dyn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pl.NewWriteRoute(snap, dp) != nil {
		t.Errorf("%s: kept though it embeds a session value", dyn)
	}
	b := pl.MultiRoute(snap, dyn, parseOne)
	if b == nil || !b.Multi || b.DB != "shop" {
		t.Fatalf("MultiRoute(%s) = %+v", dyn, b)
	}
	if _, isWrite := dp.(*plan.MultiWrite); !isWrite {
		t.Errorf("%s planned as %T", dyn, dp)
	}
	if pl.MultiRoute(snap, text, parseOne) != nil {
		t.Errorf("MultiRoute(%s): a write without session values", text)
	}
	if pl.MultiRoute(snap, "UPDATE currencies SET note = ROW_COUNT()", parseOne) != nil {
		t.Error("MultiRoute of a write asking about the previous statement")
	}
}
