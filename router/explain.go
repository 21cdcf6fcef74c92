package router

import (
	"regexp"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/wire"
)

// explainShards matches EXPLAIN SHARDS <statement>, the proxy's own statement showing how a
// statement is routed (MySQL's parser has no such form, so it is recognised before parsing).
var explainShards = regexp.MustCompile(`(?is)^\s*EXPLAIN\s+SHARDS\s+(.+)$`)

// ExplainStep is one line of EXPLAIN SHARDS: a step of the plan's description (a statement
// sent to a shard, or what the proxy does: a merge, a commit), its SQL or detail.
type ExplainStep struct {
	Step, Shard, Detail string
}

// Explain plans sql (one statement) without running it and returns its route
// (router/planner's Planner.ExplainShards).
func (s *Session) Explain(sql string) ([]ExplainStep, error) {
	snap := s.r.rules.Load()
	st, err := s.parseOne(sql)
	if err != nil {
		return nil, err
	}
	steps, err := s.planner(snap).ExplainShards(snap, st, sql, s.parseOne)
	if err != nil {
		return nil, err
	}
	out := make([]ExplainStep, 0, len(steps))
	for _, st := range steps {
		detail := st.Detail
		if st.SQL != "" {
			detail = st.SQL
		}
		out = append(out, ExplainStep{Step: st.Step, Shard: st.Shard, Detail: detail})
	}
	return out, nil
}

// explainResult answers EXPLAIN SHARDS as a result set (step, shard, detail).
func (s *Session) explainResult(sql string) (localResult, error) {
	steps, err := s.Explain(sql)
	if err != nil {
		return localResult{}, err
	}
	col := func(name string) wire.Column {
		return wire.Column{Name: name, Charset: 45, Length: 4096, Type: mysql.MYSQL_TYPE_VAR_STRING}
	}
	res := localResult{cols: []wire.Column{col("step"), col("shard"), col("detail")}}
	for _, st := range steps {
		step, shard, detail := st.Step, st.Shard, st.Detail
		res.rows = append(res.rows, []*string{&step, &shard, &detail})
	}
	return res, nil
}
