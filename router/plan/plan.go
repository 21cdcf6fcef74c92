package plan

import (
	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/rules"
)

// Primitive is one node of a route plan: a *Route, *Passthrough, *Scatter, *MultiWrite, *DDL
// or *Local, the types of this package. The executor dispatches on the concrete type.
type Primitive interface {
	// Describe is what the primitive does, for EXPLAIN SHARDS and the golden tests.
	Describe() Description
	// Attributes are the statement's attributes the plan carries (see Attrs).
	Attributes() *Attrs
}

// Attrs are what a plan says of its statement as a whole, whatever its shape.
type Attrs struct {
	// Sticky: the statement leaves state in the backend session (user variables, locks,
	// temporary tables), which keeps the session on its backend connections.
	Sticky bool
	// Dynamic: it embeds session values that change (LAST_INSERT_ID(), DATABASE()), so a
	// prepared statement's text cannot be prepared once on the backend.
	Dynamic bool
	// Diagnostic: it asks about the previous statement (ROW_COUNT(), @@warning_count), so
	// it leaves the session's diagnostics as they are.
	Diagnostic bool
	// Names translates database names of a statement reading information_schema or a SHOW;
	// empty otherwise.
	Names introspect.Names
	// Columns renames physical names in the result's column definitions.
	Columns introspect.Columns
}

// Attributes returns a itself: the primitives embed Attrs.
func (a *Attrs) Attributes() *Attrs { return a }

// flags names the attributes set, for a Description.
func (a *Attrs) flags() []string {
	var out []string
	if a.Sticky {
		out = append(out, "sticky")
	}
	if a.Dynamic {
		out = append(out, "dynamic")
	}
	if a.Diagnostic {
		out = append(out, "diagnostic")
	}
	return out
}

// Description is a primitive's account of itself: its kind, its statement's attributes and
// its steps in order. It marshals to the JSON the golden tests compare.
type Description struct {
	Primitive string   `json:"primitive"`
	Flags     []string `json:"flags,omitempty"`
	Steps     []Step   `json:"steps"`
}

// Step is one step of a Description: a statement sent to a shard (SQL, with the client's
// parameters it carries), or what the proxy does itself (Detail: a merge, a commit).
type Step struct {
	Step   string `json:"step"` // route, merge, write, commit, ddl
	Shard  string `json:"shard,omitempty"`
	SQL    string `json:"sql,omitempty"`
	Params []int  `json:"params,omitempty"` // which of the client's ? parameters the statement is sent with
	Detail string `json:"detail,omitempty"`
}

// First is where a primitive's first statement goes and its text: a Route's or
// Passthrough's own, a Scatter's first shard's, a MultiWrite's coordinator's first, a DDL's first copy's; nil
// and "" for a Local. It is what a prepared statement is prepared with on a backend for its
// metadata.
func First(p Primitive) (*rules.Shard, string) {
	if r, ok := RouteOf(p); ok {
		return r.Shard, r.SQL
	}
	switch p := p.(type) {
	case *Scatter:
		return p.Targets[0].Shard, p.Targets[0].SQL
	case *MultiWrite:
		return p.Branches[0].Shard, p.Branches[0].Stmts[0].SQL
	case *DDL:
		return p.Copies[0].Shard, p.Copies[0].SQL
	}
	return nil, ""
}
