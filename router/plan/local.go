package plan

import "github.com/shardproxy/shardproxy/wire"

// Local is a statement the proxy answers itself, without a backend: its result is computed
// at planning from the rules snapshot and the session (SHOW DATABASES lists the logical
// databases the user may use).
type Local struct {
	Attrs
	What    string // the statement, for its description ("SHOW DATABASES")
	Columns []wire.Column
	Rows    [][]*string // NULL is nil
}

// Describe is one local step.
func (l *Local) Describe() Description {
	return Description{Primitive: "local", Flags: l.flags(), Steps: []Step{{Step: "local", Detail: l.What + ": answered by the proxy"}}}
}
