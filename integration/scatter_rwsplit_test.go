package integration

import (
	"database/sql"
	"fmt"
	"slices"
	"testing"
	"time"
)

// scatterSplitProxy starts a proxy with two shards on g's primary (b1): s0 (database fo)
// reads from replica b2, s1 (database fo1) from replica b3. Table t is sharded by id over
// both; database fo reads from replicas under a 1 s lag bound; user ryw has a 1 h bound.
func scatterSplitProxy(t *testing.T, g *replGroup) *proxy {
	t.Helper()
	cfg := rwsplitConfig(t, g, len(g.srv))
	cfg.Shards = []shardConfig{
		{Name: "s0", Primary: "b1", Replicas: []string{"b2"}, Database: "fo"},
		{Name: "s1", Primary: "b1", Replicas: []string{"b3"}, Database: "fo1"},
	}
	cfg.Schemes = []map[string]any{{"name": "h", "function": "hash", "shards": []string{"s0", "s1"}}}
	cfg.Databases = []databaseConfig{{Name: "fo", DefaultShard: "s0", ReadWriteSplit: true, MaxReplicaLag: "1s",
		Tables: []map[string]any{{"name": "t", "kind": "sharded", "key": "id", "scheme": "h"}}}}
	return startProxy(t, cfg)
}

// splitRow is one row of scatterQ: a row of t and the server that read it.
type splitRow struct{ id, writer, server int }

const scatterQ = "SELECT id, writer, @@server_id FROM t ORDER BY id"

// scatterRead runs scatterQ through q (a scatter read: no shard key) and returns its rows
// by id.
func scatterRead(t testing.TB, q interface {
	Query(string, ...any) (*sql.Rows, error)
}) map[int]splitRow {
	t.Helper()
	rows, err := q.Query(scatterQ)
	if err != nil {
		t.Fatalf("%s: %v", scatterQ, err)
	}
	defer rows.Close()
	out := map[int]splitRow{}
	for rows.Next() {
		var r splitRow
		if err := rows.Scan(&r.id, &r.writer, &r.server); err != nil {
			t.Fatal(err)
		}
		out[r.id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestScatterReadWriteSplit: with read_write_split on, a read sent to every shard is served
// by each shard's own replica (a row present only on a replica proves it); a replica whose
// SQL thread is stopped is skipped for its shard only; and a session reads its own writes on
// every shard even when the replicas have not applied them.
func TestScatterReadWriteSplit(t *testing.T) {
	g := startReplGroup(t, false)
	g.srv[0].Exec(t, "CREATE DATABASE fo1", "CREATE TABLE fo1.t LIKE fo.t")
	g.sync(t, g.srv[0], g.srv[1:]...)
	// Rows only the replicas have (not binlogged): id 900 in s0's copy on b2, 901 in s1's on b3.
	for i, stmt := range []string{"INSERT INTO fo.t VALUES (900, 2)", "INSERT INTO fo1.t VALUES (901, 3)"} {
		c, err := g.srv[i+1].DB(t, "").Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"SET sql_log_bin = 0", stmt} {
			if _, err := c.ExecContext(t.Context(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		c.Close()
	}
	p := scatterSplitProxy(t, g)
	db := p.open(t, appUser, appPass, "fo", "interpolateParams=true")
	for id := 1; id <= 8; id++ {
		if _, err := db.Exec("INSERT INTO t (id, writer) VALUES (?, 0)", id); err != nil {
			t.Fatal(err)
		}
	}
	g.sync(t, g.srv[0], g.srv[1:]...)
	fromReplicas := func(rows map[int]splitRow) bool {
		return rows[900].server == 2 && rows[901].server == 3
	}
	waitFor(t, 15*time.Second, "scatter reads to reach both replicas", func() bool { return fromReplicas(scatterRead(t, db)) })

	t.Run("Routing", func(t *testing.T) {
		prep := p.open(t, appUser, appPass, "fo") // server-side prepared statements
		for i := range 10 {
			for name, q := range map[string]*sql.DB{"text": db, "prepared": prep} {
				rows := scatterRead(t, q)
				if !fromReplicas(rows) || len(rows) != 10 {
					t.Fatalf("%s read %d: %v, want the 8 rows and each replica's own row, each from its replica (s0: 2, s1: 3)", name, i, rows)
				}
				for id := 1; id <= 8; id++ {
					if r := rows[id]; r.server != 2 && r.server != 3 {
						t.Errorf("%s read %d: row %d from server %d, want a replica", name, i, id, r.server)
					}
				}
			}
		}
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		rows := scatterRead(t, tx)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if len(rows) != 8 || rows[1].server != 1 {
			t.Errorf("a scatter read in a transaction: %v, want the primary's 8 rows", rows)
		}
	})

	t.Run("LaggingReplicaSkipped", func(t *testing.T) {
		g.srv[2].Exec(t, "STOP SLAVE SQL_THREAD")
		waitFor(t, 5*time.Second, "s1's reads to leave its stopped replica", func() bool {
			_, ok := scatterRead(t, db)[901]
			return !ok
		})
		for i := range 10 {
			rows := scatterRead(t, db)
			_, s1Replica := rows[901]
			if rows[900].server != 2 || s1Replica || len(rows) != 9 {
				t.Fatalf("read %d with s1's replica stopped: %v, want s0 from its replica (2) and s1 from the primary", i, rows)
			}
		}
		g.srv[2].Exec(t, "START SLAVE SQL_THREAD")
		waitFor(t, 10*time.Second, "s1's reads to come back to its replica", func() bool { return fromReplicas(scatterRead(t, db)) })
	})

	t.Run("ReadYourWrites", func(t *testing.T) {
		ryw := p.open(t, "ryw", appPass, "fo", "interpolateParams=true")
		ryw.SetMaxOpenConns(1) // one proxy session
		other := p.open(t, "ryw", appPass, "fo", "interpolateParams=true")
		// One row of each shard, each held on its shard's replica by a transaction: the
		// replicas receive the next updates of them but cannot apply them.
		shardOf := func(id int) int {
			var n int
			if err := g.srv[0].DB(t, "").QueryRow("SELECT COUNT(*) FROM fo.t WHERE id = ?", id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return 1 - n // 0: in fo (s0), 1: in fo1 (s1)
		}
		held := map[int]int{} // shard → id
		for id := 1; id <= 8 && len(held) < 2; id++ {
			if _, ok := held[shardOf(id)]; !ok {
				held[shardOf(id)] = id
			}
		}
		if len(held) != 2 {
			t.Fatalf("ids 1..8 all hash to one shard: %v", held)
		}
		for shard, id := range held {
			lock, err := g.srv[shard+1].DB(t, "").Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Close()
			phys := []string{"fo", "fo1"}[shard]
			for _, q := range []string{"BEGIN", fmt.Sprintf("SELECT writer FROM %s.t WHERE id = %d FOR UPDATE", phys, id)} {
				if _, err := lock.ExecContext(t.Context(), q); err != nil {
					t.Fatal(err)
				}
			}
			defer func() { _, _ = lock.ExecContext(t.Context(), "ROLLBACK") }()
			if _, err := ryw.Exec("UPDATE t SET writer = 7 WHERE id = ?", id); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		rows := scatterRead(t, ryw)
		t.Logf("SCATTER READ-YOUR-WRITES the writing session's scatter read took %v", time.Since(start))
		for _, id := range held {
			if rows[id].writer != 7 {
				t.Errorf("the writing session read row %v after its UPDATE, want writer 7", rows[id])
			}
		}
		stale := scatterRead(t, other)
		for _, id := range held {
			if r := stale[id]; r.writer != 0 || !slices.Contains([]int{2, 3}, r.server) {
				t.Errorf("another session read row %v, want the replica's stale writer 0 (the test's premise)", r)
			}
		}
	})
}
