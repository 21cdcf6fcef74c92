package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// preparedCase is one golden case of a prepared statement: its text with ? placeholders,
// what PREPARE planned (the plan with its bind variables), and for each set of values an
// EXECUTE binds, how the execution was placed, the SQL each shard is sent and the parses it
// cost.
type preparedCase struct {
	Comment string `json:"comment"`
	Query   string `json:"query"`
	// LastInsertID is the session's LAST_INSERT_ID() at each execution.
	LastInsertID uint64 `json:"last_insert_id,omitempty"`
	// Prepared describes the plan PREPARE made (after the executions, for a scatter
	// template built at the first one): bind variables as {slot}, {slot's database},
	// {shard of the bound key's slot}, '{last_insert_id}' (session values), {?i} (a
	// scatter template's holes for parameter i), { LIMIT offset+count} (the LIMIT a
	// template pushes to the shards, from the values) and ? (sent as parameters).
	Prepared   []string            `json:"prepared"`
	Executions []preparedExecution `json:"executions"`
}

// preparedExecution is one EXECUTE of a preparedCase.
type preparedExecution struct {
	Params []int64 `json:"params"` // bound as BIGINT
	// Via is what placed it: "bound route" (slot from the values, bind variables filled
	// in), "scatter template" (shards pruned, literals written in), "values bound into the
	// text" (a scatter read that fits no template: parsed once with its values), "kept
	// branches" (a multi-shard write's branches handed the values), "split on the tree" (a
	// multi-shard write planned on the prepared tree), "prepared route" (the statement as
	// prepared) or "planned" (parsed and planned in full).
	Via string `json:"via"`
	// Routed is what each shard is sent: "shard: SQL" for a statement executed with the
	// client's values as parameters (" [params i,j]" for a part of a multi-shard write),
	// "shard s: SQL" and "merge: step" for a scatter read whose SQL holds the values.
	Routed []string `json:"routed"`
	Parses int      `json:"parses"`
	Error  string   `json:"error,omitempty"` // what EXECUTE answered, for values it refuses
}

// TestPlanPrepared: the golden cases of prepared statements with bind variables
// (router/planner/testdata/plan_prepared.json, -update rewrites it). Each case is prepared in a session
// over the fake backend and executed with each set of values; the routed SQL of every
// execution placed without parsing must equal what planning the statement afresh with its
// values gives.
func TestPlanPrepared(t *testing.T) {
	golden(t, "plan_prepared.json", func(c preparedCase) (string, string) { return c.Comment, c.Query }, runPrepared,
		func(c preparedCase) string {
			b, _ := json.MarshalIndent(c, "", "  ")
			return string(b)
		})
}

// runPrepared prepares c.Query and executes it with each set of values, and returns the
// outcome in c's shape.
func runPrepared(t *testing.T, c preparedCase) preparedCase {
	t.Helper()
	be := newFakeBackend()
	s := fakeSession(t, shardedRouter(t, be), "app", 1)
	s.db = "shop"
	ctx := context.Background()
	got := preparedCase{Comment: c.Comment, Query: c.Query, LastInsertID: c.LastInsertID}
	st, err := s.Prepare(ctx, c.Query)
	if err != nil {
		t.Fatal(err)
	}
	snap := s.r.rules.Load()
	for _, e := range c.Executions {
		s.ids.last = c.LastInsertID
		params := int64Params(e.Params)
		if params == nil {
			params = []wire.Param{}
		}
		via, routed := placeExecution(t, s, snap, st, params)
		before := s.parses
		var w clientRecorder
		ex := preparedExecution{Params: e.Params, Via: via, Routed: routed}
		if err := s.Execute(ctx, st, params, &w); err != nil {
			ex.Error = err.Error()
		}
		ex.Parses = s.parses - before
		got.Executions = append(got.Executions, ex)
	}
	got.Prepared = describeKeptPlan(t, st)
	return got
}

// placeExecution places one execution of st as Execute does, without running it, and
// checks a placement made without parsing against planning the statement afresh.
func placeExecution(t *testing.T, s *Session, snap *rules.Snapshot, st *Stmt, params []wire.Param) (via string, routed []string) {
	t.Helper()
	fresh, err := s.parseOne(st.text)
	if err != nil {
		t.Fatal(err)
	}
	want, werr := s.plan(snap, fresh, st.text, params)
	var got plan.Primitive
	switch {
	case st.bound != nil && st.bound.Fixed == nil && placeBound(s, snap, st, params, &got):
		via = "bound route"
	case st.bound != nil && st.bound.Fixed != nil && placeBound(s, snap, st, params, &got):
		via = "prepared route"
	case placeScatter(s, snap, st, params, &got):
		via = "scatter template"
		want, werr = bindAndPlan(t, s, snap, st.text, params)
	case placeUntemplated(s, snap, st, params, &got):
		via = "values bound into the text"
		want, werr = bindAndPlan(t, s, snap, st.text, params)
	case placeWrites(s, snap, st, params, &got):
		via = "kept branches"
	case placeSplit(s, snap, st, params, &got):
		via = "split on the tree"
	case !st.dynamic && (st.snap == nil || st.snap == snap):
		return "prepared route", []string{st.shard.Name + ": " + st.sql}
	default:
		if errors.Is(werr, planner.ErrNestedUnpinned) { // its subqueries run first, their values bound in
			var bound bool
			cp := *st // planExecution keeps the tree it parses in st: not before the execution counted
			want, bound, werr = cp.planExecution(context.Background(), s, snap, params)
			if !bound {
				t.Fatalf("%s: refused for its subqueries, not planned with them bound", st.text)
			}
		}
		if werr != nil {
			return "planned", []string{"error: " + werr.Error()}
		}
		if _, scatter := want.(*plan.Scatter); scatter { // a scatter read sends the values as literals
			if want, werr = bindAndPlan(t, s, snap, st.text, params); werr != nil {
				t.Fatal(werr)
			}
		}
		return "planned", describeSteps(want)
	}
	routed = describeSteps(got)
	if werr != nil || !slices.Equal(routed, describeSteps(want)) {
		t.Errorf("%s: %q, planning afresh: %q (%v)", via, routed, describeSteps(want), werr)
	}
	return via, routed
}

func placeBound(s *Session, snap *rules.Snapshot, st *Stmt, params []wire.Param, p *plan.Primitive) bool {
	shard, sql, _, ok := st.bound.Resolve(execViewOf(s), snap, params)
	*p = &plan.Route{Shard: shard, SQL: sql}
	return ok
}

func placeScatter(s *Session, snap *rules.Snapshot, st *Stmt, params []wire.Param, p *plan.Primitive) bool {
	if t := st.scatter; t != nil && t.PerSlot != nil { // the execution plans a new set of slots itself
		saved := maps.Clone(t.PerSlot)
		defer func() { t.PerSlot = saved }()
	}
	sp, _, ok := st.scatter.Resolve(execViewOf(s), snap, params, s.parseOne)
	*p = sp
	return ok
}

func placeUntemplated(s *Session, snap *rules.Snapshot, st *Stmt, params []wire.Param, p *plan.Primitive) bool {
	sp, _, ok := untemplated(s, st.scatter, snap, st, params)
	*p = sp
	return ok
}

func placeWrites(s *Session, snap *rules.Snapshot, st *Stmt, params []wire.Param, p *plan.Primitive) bool {
	w, ok := st.writes.Resolve(execViewOf(s), snap, params)
	*p = w
	return ok
}

func placeSplit(s *Session, snap *rules.Snapshot, st *Stmt, params []wire.Param, p *plan.Primitive) bool {
	w, ok := st.bound.ResolveWrite(execViewOf(s), snap, params)
	*p = w
	return ok
}

// bindAndPlan plans text with the values bound into it as literals, as a scatter read's
// execution sends them.
func bindAndPlan(t *testing.T, s *Session, snap *rules.Snapshot, text string, params []wire.Param) (plan.Primitive, error) {
	t.Helper()
	node, err := s.parseOne(text)
	if err != nil {
		t.Fatal(err)
	}
	if err := planner.BindParams(node, params); err != nil {
		t.Fatal(err)
	}
	return s.plan(snap, node, text, nil)
}

// describeSteps lists what each shard is sent under p: "shard s: SQL" and "merge: step"
// for a scatter read, "s: SQL [params i j]" for each statement of a multi-shard write, "s:
// SQL" for a route.
func describeSteps(p plan.Primitive) []string {
	if r, ok := plan.RouteOf(p); ok {
		return []string{r.Shard.Name + ": " + r.SQL}
	}
	var out []string
	switch p := p.(type) {
	case *plan.Scatter:
		for _, tg := range p.Targets {
			out = append(out, fmt.Sprintf("shard %s: %s", tg.Shard.Name, tg.SQL))
		}
		for _, m := range p.Merge.Steps() {
			out = append(out, "merge: "+m)
		}
	case *plan.MultiWrite:
		for _, b := range p.Branches {
			for _, ws := range b.Stmts {
				d := b.Shard.Name + ": " + ws.SQL
				if len(ws.ParamIdx) > 0 {
					d += fmt.Sprintf(" [params %s]", strings.Trim(fmt.Sprint(ws.ParamIdx), "[]"))
				}
				out = append(out, d)
			}
		}
	}
	return out
}

// describeKeptPlan describes what PREPARE (or a scatter template's first execution)
// planned for st, its bind variables unfilled.
func describeKeptPlan(t *testing.T, st *Stmt) []string {
	t.Helper()
	var out []string
	if st.bound != nil && st.bound.Multi {
		out = append(out, "multi-shard write: split on the tree, its session values filled in")
	} else if st.bound != nil {
		steps, err := st.bound.Explain()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			out = append(out, fmt.Sprintf("%s %s: %s", s.Step, s.Shard, s.SQL))
		}
		if st.bound.Fixed == nil && planner.IsWrite(st.bound.Stmt) {
			out = append(out, "values of several slots: split on the tree")
		}
	}
	if st.writes != nil {
		for _, b := range describeSteps(st.writes.Write()) {
			out = append(out, "branch "+b)
		}
	}
	if t := st.scatter; t != nil && t.Shards != nil {
		holes := make([]string, len(t.Lits), len(t.Lits)+1)
		for i := range holes {
			holes[i] = fmt.Sprintf("{?%d}", i)
		}
		if t.Limit.Pushed || len(t.Vals) > 0 {
			holes = append(holes, "{ LIMIT offset+count}")
		}
		for _, v := range t.Vals {
			holes = append(holes, "{"+v.Name+"}")
		}
		out = append(out, describeTemplates("", t.Shards, holes)...)
		var sets []string
		for set := range t.PerSlot {
			sets = append(sets, set)
		}
		slices.Sort(sets)
		for _, set := range sets {
			out = append(out, describeTemplates("slots "+set+" ", t.PerSlot[set], holes)...)
		}
		for _, m := range t.Merge.Steps() { // the LIMIT values planned with are sentinels: show the parameters
			m = strings.ReplaceAll(m, strconv.Itoa(planner.LimitCountSentinel), fmt.Sprintf("{?%d}", t.Limit.Count))
			m = strings.ReplaceAll(m, strconv.Itoa(planner.LimitOffsetSentinel), fmt.Sprintf("{?%d}", t.Limit.Offset))
			out = append(out, "merge: "+m)
		}
	} else if t != nil {
		out = append(out, "no scatter template: planned at each execution that goes to several shards")
	}
	if out == nil {
		if st.dynamic {
			return []string{"planned at each execution"}
		}
		return []string{"route " + st.shard.Name + ": " + st.sql}
	}
	return out
}

// describeTemplates lists the shards' statements of a scatter template, holes filled in
// with their names.
func describeTemplates(prefix string, tmpls map[*rules.Shard]planner.SQLTemplate, holes []string) []string {
	var shards []*rules.Shard
	for sh := range tmpls {
		shards = append(shards, sh)
	}
	slices.SortFunc(shards, func(a, b *rules.Shard) int { return strings.Compare(a.Name, b.Name) })
	var out []string
	for _, sh := range shards {
		out = append(out, fmt.Sprintf("template %s%s: %s", prefix, sh.Name, tmpls[sh].Fill(holes)))
	}
	return out
}
