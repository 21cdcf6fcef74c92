package router

import (
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"
)

// BenchmarkPlanText parses and plans text statements of the sharded golden config: a point
// select, a scatter with a merge, a split insert.
func BenchmarkPlanText(b *testing.B) {
	queries := map[string]string{
		"point":   "SELECT * FROM orders WHERE user_id = 1",
		"scatter": "SELECT status, COUNT(*) FROM orders GROUP BY status ORDER BY 2 DESC LIMIT 3",
		"split":   "INSERT INTO orders (id, user_id) VALUES (1, 1), (2, 2)",
	}
	for name, q := range queries {
		b.Run(name, func(b *testing.B) {
			s, snap := newTestSession(&testing.T{}, plantest.ShardedConfig(), "app", "shop")
			b.ReportAllocs()
			for b.Loop() {
				st, err := s.parseOne(q)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.plan(snap, st, q, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
