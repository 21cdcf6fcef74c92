package plan

import (
	"reflect"
	"testing"

	"github.com/shardproxy/shardproxy/rules"
)

func TestDescribe(t *testing.T) {
	s0, s1 := &rules.Shard{Name: "s0"}, &rules.Shard{Name: "s1"}
	w := &MultiWrite{Attrs: Attrs{Dynamic: true}, Copies: true}
	w.Add(s0, WriteStmt{SQL: "INSERT a", ParamIdx: []int{0, 1}})
	w.Add(s1, WriteStmt{SQL: "INSERT b", ParamIdx: []int{}})
	w.Add(s0, WriteStmt{SQL: "INSERT c"})
	local := &MultiWrite{}
	local.Add(s1, WriteStmt{SQL: "UPDATE x"})
	local.Add(s1, WriteStmt{SQL: "UPDATE y"})
	cases := []struct {
		name string
		p    Primitive
		want Description
	}{
		{"route", &Route{Attrs: Attrs{Sticky: true, Diagnostic: true}, Shard: s1, SQL: "SELECT 1"},
			Description{Primitive: "route", Flags: []string{"sticky", "diagnostic"}, Steps: []Step{{Step: "route", Shard: "s1", SQL: "SELECT 1"}}}},
		{"passthrough", &Passthrough{Route{Attrs: Attrs{Sticky: true}, Shard: s0, SQL: "SELECT @a"}},
			Description{Primitive: "passthrough", Flags: []string{"sticky"}, Steps: []Step{{Step: "route", Shard: "s0", SQL: "SELECT @a"}}}},
		{"scatter", &Scatter{Targets: []Target{{Shard: s0, SQL: "SELECT a"}, {Shard: s1, SQL: "SELECT b"}}, Merge: &Merge{Count: -1}},
			Description{Primitive: "scatter", Steps: []Step{{Step: "route", Shard: "s0", SQL: "SELECT a"}, {Step: "route", Shard: "s1", SQL: "SELECT b"}, {Step: "merge", Detail: "concatenate streams"}}}},
		{"xa write", w, Description{Primitive: "multi-write", Flags: []string{"dynamic", "copies"}, Steps: []Step{
			{Step: "write", Shard: "s0", SQL: "INSERT a", Params: []int{0, 1}},
			{Step: "write", Shard: "s0", SQL: "INSERT c"},
			{Step: "write", Shard: "s1", SQL: "INSERT b"},
			{Step: "commit", Shard: "s0", Detail: "atomic over 2 shards: XA PREPARE on the others, then this coordinator's COMMIT with the decision row, then XA COMMIT"},
		}}},
		{"local write", local, Description{Primitive: "multi-write", Steps: []Step{
			{Step: "write", Shard: "s1", SQL: "UPDATE x"}, {Step: "write", Shard: "s1", SQL: "UPDATE y"},
			{Step: "commit", Shard: "s1", Detail: "one local transaction"},
		}}},
		{"ddl", &DDL{Copies: []DDLCopy{{Shard: s0, Table: "t_0000", SQL: "ALTER TABLE t_0000"}, {Shard: s1, Table: "t_0001", SQL: "ALTER TABLE t_0001"}}},
			Description{Primitive: "ddl", Steps: []Step{{Step: "ddl", Shard: "s0", SQL: "ALTER TABLE t_0000"}, {Step: "ddl", Shard: "s1", SQL: "ALTER TABLE t_0001"}}}},
		{"local", &Local{What: "SHOW DATABASES"},
			Description{Primitive: "local", Steps: []Step{{Step: "local", Detail: "SHOW DATABASES: answered by the proxy"}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.p.Describe(); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
	if w.Commit() != CommitXA || local.Commit() != CommitLocal {
		t.Errorf("commit protocols %v, %v", w.Commit(), local.Commit())
	}
}

type binding struct{}

func (binding) Explain() ([]Step, error) { return nil, nil }

func TestBoundRouteFlagged(t *testing.T) {
	d := (&Route{Attrs: Attrs{Dynamic: true}, Shard: &rules.Shard{Name: "s0"}, SQL: "SELECT 1", Bound: binding{}}).Describe()
	if want := []string{"dynamic", "bound"}; !reflect.DeepEqual(d.Flags, want) {
		t.Errorf("flags %v, want %v", d.Flags, want)
	}
}

func TestFirst(t *testing.T) {
	s0, s1 := &rules.Shard{Name: "s0"}, &rules.Shard{Name: "s1"}
	w := &MultiWrite{}
	w.Add(s1, WriteStmt{SQL: "w1"})
	w.Add(s0, WriteStmt{SQL: "w0"})
	cases := []struct {
		p     Primitive
		shard *rules.Shard
		sql   string
	}{
		{&Route{Shard: s0, SQL: "r"}, s0, "r"},
		{&Passthrough{Route{Shard: s1, SQL: "p"}}, s1, "p"},
		{&Scatter{Targets: []Target{{Shard: s1, SQL: "t1"}, {Shard: s0, SQL: "t0"}}}, s1, "t1"},
		{w, s1, "w1"},
		{&DDL{Copies: []DDLCopy{{Shard: s0, SQL: "d"}}}, s0, "d"},
		{&Local{What: "SHOW DATABASES"}, nil, ""},
	}
	for _, c := range cases {
		if shard, sql := First(c.p); shard != c.shard || sql != c.sql {
			t.Errorf("%T: %v %q, want %v %q", c.p, shard, sql, c.shard, c.sql)
		}
	}
}

func TestRouteOf(t *testing.T) {
	r := &Route{Shard: &rules.Shard{Name: "s0"}, SQL: "r"}
	p := &Passthrough{Route{Shard: &rules.Shard{Name: "s1"}, SQL: "p"}}
	if got, ok := RouteOf(r); !ok || got != r {
		t.Errorf("RouteOf(route) = %v, %v", got, ok)
	}
	if got, ok := RouteOf(p); !ok || got != &p.Route {
		t.Errorf("RouteOf(passthrough) = %v, %v", got, ok)
	}
	for _, other := range []Primitive{&Scatter{}, &MultiWrite{}, &DDL{}, &Local{}, nil} {
		if got, ok := RouteOf(other); ok || got != nil {
			t.Errorf("RouteOf(%T) = %v, %v", other, got, ok)
		}
	}
}
