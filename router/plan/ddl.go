package plan

import "github.com/shardproxy/shardproxy/rules"

// DDL is DDL on sharded or broadcast tables fanned out to every physical copy: each slot's
// table of a sharded table, each shard's copy of a broadcast table. Unlike a MultiWrite it
// has no atomic commit (MariaDB commits DDL implicitly): the copies change one at a time, in
// order, and a partial failure is reported copy by copy.
type DDL struct {
	Attrs
	Copies []DDLCopy
}

// DDLCopy is the statement one physical copy gets.
type DDLCopy struct {
	Shard *rules.Shard
	Table string // the physical name of the statement's first table there
	SQL   string
}

// Describe is a ddl step per copy.
func (d *DDL) Describe() Description {
	out := Description{Primitive: "ddl", Flags: d.flags()}
	for _, c := range d.Copies {
		out.Steps = append(out.Steps, Step{Step: "ddl", Shard: c.Shard.Name, SQL: c.SQL})
	}
	return out
}
