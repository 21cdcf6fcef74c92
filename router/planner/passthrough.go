package planner

import "github.com/shardproxy/shardproxy/router/plan"

// Passthrough is p, the plan of the client's statement text, as a plan.Passthrough when it
// is a Route that sends text unchanged (its SQL is text: nothing renamed or written in) and
// binds nothing at execution; p otherwise.
func Passthrough(p plan.Primitive, text string) plan.Primitive {
	r, ok := p.(*plan.Route)
	if !ok || r.Bound != nil || r.SQL != text {
		return p
	}
	return &plan.Passthrough{Route: *r}
}
