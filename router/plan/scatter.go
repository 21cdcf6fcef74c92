package plan

import "github.com/shardproxy/shardproxy/rules"

// Scatter sends a statement to several shards, each its own text, and merges their results
// into one (Merge).
type Scatter struct {
	Attrs
	Targets []Target
	Merge   *Merge
}

// Target is what one shard of a Scatter runs.
type Target struct {
	Shard *rules.Shard
	Slots []int // the slots of the statement's rows on Shard
	SQL   string
	// Probe, when set, is the statement whose column definitions the client gets
	// (router/engine's Gather asks the first shard for them).
	Probe string
}

// Describe is a route step per shard, then the merge steps.
func (s *Scatter) Describe() Description {
	d := Description{Primitive: "scatter", Flags: s.flags()}
	for _, t := range s.Targets {
		d.Steps = append(d.Steps, Step{Step: "route", Shard: t.Shard.Name, SQL: t.SQL})
	}
	if s.Merge != nil {
		for _, m := range s.Merge.Steps() {
			d.Steps = append(d.Steps, Step{Step: "merge", Detail: m})
		}
	}
	return d
}
