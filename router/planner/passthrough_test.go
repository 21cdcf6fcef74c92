package planner

import (
	"reflect"
	"testing"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
)

type fixedBinding struct{}

func (fixedBinding) Explain() ([]plan.Step, error) { return nil, nil }

func TestPassthrough(t *testing.T) {
	s0 := &rules.Shard{Name: "s0"}
	const text = "SELECT * FROM t"
	same := &plan.Route{Attrs: plan.Attrs{Sticky: true}, Shard: s0, SQL: text}
	renamed := &plan.Route{Shard: s0, SQL: "SELECT * FROM t_0001"}
	bound := &plan.Route{Shard: s0, SQL: text, Bound: fixedBinding{}}
	scatter := &plan.Scatter{Targets: []plan.Target{{Shard: s0, SQL: text}}}

	got, ok := Passthrough(same, text).(*plan.Passthrough)
	if !ok || !reflect.DeepEqual(got.Route, *same) {
		t.Errorf("a route sending the text as it is: %#v, want a Passthrough of it", Passthrough(same, text))
	}
	for name, p := range map[string]plan.Primitive{"rewritten": renamed, "bound": bound, "scatter": scatter} {
		if out := Passthrough(p, text); out != p {
			t.Errorf("%s: %T, want the plan unchanged", name, out)
		}
	}
}
