package plan

import "github.com/shardproxy/shardproxy/rules"

// Route sends one statement to one shard.
type Route struct {
	Attrs
	Shard *rules.Shard
	SQL   string
	// Bound is set at prepare time for a statement routed by its parameters alone: each
	// execution resolves its route from it without planning again (router/planner's
	// BoundRoute). Shard and SQL then describe the statement as prepared (slot 0's).
	Bound Binding
}

// Binding is a one-shard route placed at each execution from a prepared statement's bound
// values, its bind variables (the slot's shard, physical table and database) filled in then.
type Binding interface {
	// Explain describes the route with its bind variables shown as placeholders.
	Explain() ([]Step, error)
}

// Describe is one route step; a bound route is flagged "bound".
func (r *Route) Describe() Description {
	d := Description{Primitive: "route", Flags: r.flags(), Steps: []Step{{Step: "route", Shard: r.Shard.Name, SQL: r.SQL}}}
	if r.Bound != nil {
		d.Flags = append(d.Flags, "bound")
	}
	return d
}
