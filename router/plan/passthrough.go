package plan

// Passthrough is the client's statement sent to one shard as the client sent it: a Route
// whose SQL is the statement's text as received, nothing rewritten (no physical name, no
// session value written in) and nothing bound at execution (its Bound is nil). The
// executor runs it as the Route it embeds.
type Passthrough struct {
	Route
}

// Describe is a Route's one route step, under primitive "passthrough".
func (p *Passthrough) Describe() Description {
	d := p.Route.Describe()
	d.Primitive = "passthrough"
	return d
}

// RouteOf is the Route a one-shard primitive sends: a *Route itself, a *Passthrough's own;
// ok is false for the other primitives, which send statements to several shards or none.
func RouteOf(p Primitive) (r *Route, ok bool) {
	switch p := p.(type) {
	case *Route:
		return p, true
	case *Passthrough:
		return &p.Route, true
	}
	return nil, false
}
