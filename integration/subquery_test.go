package integration

import (
	"fmt"
	"strings"
	"testing"
)

// testSubqueryValuesBound checks server.max_subquery_values: an uncorrelated IN (SELECT ...)
// over two shards is answered as one MariaDB answers it while the subquery returns at most
// the bound, and fails with 1104 naming the limit beyond it; the connection stays usable.
func testSubqueryValuesBound(t *testing.T, e *env) {
	cfg := e.config(t, dbMap{Logical: "sub", Physical: "sub_0"})
	e.rootExec(t, "CREATE DATABASE IF NOT EXISTS sub_1", "CREATE DATABASE IF NOT EXISTS sub_ref")
	cfg.Shards = append(cfg.Shards, shardConfig{Name: "s1", Primary: "b0", Database: "sub_1"})
	cfg.Schemes = []map[string]any{{"name": "h", "function": "hash", "shards": []string{"s0", "s1"}}}
	cfg.Databases[0].Tables = []map[string]any{{"name": "t", "kind": "sharded", "key": "k", "scheme": "h"}}
	cfg.Server["max_subquery_values"] = 50
	var inserts [3][]string
	for k := 1; k <= 300; k++ {
		v := fmt.Sprintf("(%d, %d)", k, k%100)
		inserts[k%2] = append(inserts[k%2], v)
		inserts[2] = append(inserts[2], v)
	}
	for i, db := range []string{"sub_0", "sub_1", "sub_ref"} {
		e.rootExec(t, "DROP TABLE IF EXISTS "+db+".t", "CREATE TABLE "+db+".t (k BIGINT PRIMARY KEY, g INT NOT NULL)",
			"INSERT INTO "+db+".t VALUES "+strings.Join(inserts[i], ","))
	}
	ref := e.direct(t, "sub_ref")
	p := startProxy(t, cfg)
	for _, mode := range []string{"interpolateParams=true", "interpolateParams=false"} {
		db := p.open(t, appUser, appPass, "sub", mode)
		for _, q := range []string{
			"SELECT k, g FROM t WHERE k IN (SELECT k + 1 FROM t WHERE g < 16) ORDER BY k", // 48 values
			"SELECT COUNT(*) FROM t WHERE g NOT IN (SELECT g FROM t WHERE k <= 50)",       // 50 values
			"SELECT COUNT(*) FROM t WHERE EXISTS (SELECT 1 FROM t WHERE g > 98)",          // EXISTS reads one row
			"SELECT COUNT(*) FROM t WHERE k IN (SELECT k FROM t WHERE g < 0) OR k = 7",    // empty
		} {
			want, err := tryQuery(ref, q)
			if err != nil {
				t.Fatalf("%s on the reference: %v", q, err)
			}
			got, err := tryQuery(db, q)
			if err != nil {
				t.Errorf("%s (%s): %v", q, mode, err)
			} else if diff := diffResults(want, got, true); diff != "" {
				t.Errorf("%s (%s): %s", q, mode, diff)
			}
		}
		// With a parameter: interpolated, a plain query; prepared, described at PREPARE and
		// bound at each EXECUTE, the limit applying the same way.
		withParam := "SELECT COUNT(*) FROM t WHERE k IN (SELECT k FROM t WHERE g < ?)"
		for _, g := range []int{5, 16} {
			got, err := tryQuery(db, withParam, g)
			if want, rerr := tryQuery(ref, withParam, g); rerr != nil || err != nil {
				t.Errorf("%s [%d] (%s): %v, reference %v", withParam, g, mode, err, rerr)
			} else if diff := diffResults(want, got, true); diff != "" {
				t.Errorf("%s [%d] (%s): %s", withParam, g, mode, diff)
			}
		}
		_, err := tryQuery(db, withParam, 17) // 51 values
		wantError(t, err, 1104, "42000")
		_, err = tryQuery(db, "SELECT COUNT(*) FROM t WHERE k IN (SELECT k FROM t WHERE g < 17)") // 51 values
		wantError(t, err, 1104, "42000")
		if err != nil && !strings.Contains(err.Error(), "server.max_subquery_values") {
			t.Errorf("the error does not name the limit: %v", err)
		}
		if v := queryString(t, db, "SELECT COUNT(*) FROM t"); v != "300" {
			t.Errorf("after the refusal: COUNT(*) = %s", v)
		}
	}
}
