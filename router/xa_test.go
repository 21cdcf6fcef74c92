package router

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/txn"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// shardedFakeSession is a session of user app in database shop of plantest.ShardedConfig, over be.
func shardedFakeSession(t *testing.T, be *fakeBackend, hook func(string), m txn.XAMetrics) *Session {
	t.Helper()
	snap, err := rules.Build(plantest.ShardedConfig())
	if err != nil {
		t.Fatal(err)
	}
	r := New(Options{Rules: rules.NewStore(snap), Backend: be, XATestHook: hook, XAMetrics: m})
	s := fakeSession(t, r, "app", 7)
	if err := s.UseDB(context.Background(), "shop"); err != nil {
		t.Fatal(err)
	}
	return s
}

// xaCounts is an XAMetrics that records what it counts.
type xaCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *xaCounts) XATransaction(outcome string) { c.add("txn " + outcome) }
func (c *xaCounts) XARecovered(decision string)  { c.add("recovered " + decision) }
func (c *xaCounts) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k]++
}

var hexLiteral = regexp.MustCompile(`X'[0-9a-f]*'`)

// shardLogs splits the backend log by shard ("s1#3: SQL" → s1: [SQL]); XA ids become
// X'…', the gtrid being random; the session's USE is dropped.
func shardLogs(be *fakeBackend) map[string][]string {
	out := map[string][]string{}
	for _, l := range be.takeLog() {
		shard, sql, _ := strings.Cut(l, ": ")
		shard, _, _ = strings.Cut(shard, "#")
		if strings.HasPrefix(sql, "USE ") {
			continue
		}
		out[shard] = append(out[shard], hexLiteral.ReplaceAllString(sql, "X'…'"))
	}
	return out
}

func wantShardLogs(t *testing.T, got map[string][]string, want map[string][]string) {
	t.Helper()
	for shard := range got {
		if _, ok := want[shard]; !ok {
			t.Errorf("shard %s received %q, want nothing", shard, got[shard])
		}
	}
	for shard, w := range want {
		if !slices.Equal(got[shard], w) {
			t.Errorf("shard %s received\n%q\nwant\n%q", shard, got[shard], w)
		}
	}
}

func TestMultiShardWrites(t *testing.T) {
	// Users 1 and 3 are on s1, user 2 on s0 (TestHashSlots).
	const (
		split    = "INSERT INTO orders (id, user_id) VALUES (1, 1), (2, 2), (3, 3)"
		s1Rows   = "INSERT INTO `orders` (`id`,`user_id`) VALUES (1,1),(3,3)"
		s0Rows   = "INSERT INTO `orders` (`id`,`user_id`) VALUES (2,2)"
		decision = "INSERT INTO shardproxy.xa_decisions (gtrid, decision) VALUES (X'…', 'commit')"
	)
	cases := []struct {
		name      string
		sql       string
		fail      bool // the query is expected to fail
		want      map[string][]string
		hookCalls []string
		counted   string // the XA outcome counted, if any
	}{
		{
			name: "split INSERT: coordinator commits the decision, the participant is prepared then committed",
			sql:  split,
			want: map[string][]string{
				"s1": {"START TRANSACTION", s1Rows, decision, "COMMIT"},
				"s0": {"XA START X'…',X'…'", s0Rows, "XA END X'…',X'…'", "XA PREPARE X'…',X'…'", "XA COMMIT X'…',X'…'"},
			},
			hookCalls: []string{"prepared", "committed"},
			counted:   "txn committed",
		},
		{
			name: "a failing participant rolls back every branch",
			sql:  "INSERT INTO orders (id, user_id) VALUES (1, 1), ('FAIL', 2)",
			fail: true,
			want: map[string][]string{
				"s1": {"START TRANSACTION", "INSERT INTO `orders` (`id`,`user_id`) VALUES (1,1)", decision, "ROLLBACK"},
				"s0": {"XA START X'…',X'…'", "INSERT INTO `orders` (`id`,`user_id`) VALUES ('FAIL',2)", "XA END X'…',X'…'", "XA ROLLBACK X'…',X'…'"},
			},
			counted: "txn rolled_back",
		},
		{
			name: "a failing coordinator rolls back the prepared participant",
			sql:  "INSERT INTO orders (id, user_id) VALUES ('FAIL', 1), (2, 2)",
			fail: true,
			want: map[string][]string{
				"s1": {"START TRANSACTION", "INSERT INTO `orders` (`id`,`user_id`) VALUES ('FAIL',1)", "ROLLBACK"},
				"s0": {"XA START X'…',X'…'", s0Rows, "XA END X'…',X'…'", "XA PREPARE X'…',X'…'", "XA ROLLBACK X'…',X'…'"},
			},
			counted: "txn rolled_back",
		},
		{
			name: "two physical tables on one shard: a local transaction, no XA",
			sql:  "INSERT INTO accounts (account_id, balance) VALUES (0, 1), (1, 2)",
			want: map[string][]string{
				"s0": {"START TRANSACTION", "INSERT INTO `accounts_0000` (`account_id`,`balance`) VALUES (0,1)",
					"INSERT INTO `accounts_0001` (`account_id`,`balance`) VALUES (1,2)", "COMMIT"},
			},
		},
		{
			name: "broadcast UPDATE on every shard, the default shard coordinating",
			sql:  "UPDATE currencies SET rate = 2 WHERE code = 'EUR'",
			want: func() map[string][]string {
				u := "UPDATE currencies SET rate = 2 WHERE code = 'EUR'"
				m := map[string][]string{"s0": {"START TRANSACTION", u, decision, "COMMIT"}}
				for _, sh := range []string{"s1", "s2", "s3"} {
					m[sh] = []string{"XA START X'…',X'…'", u, "XA END X'…',X'…'", "XA PREPARE X'…',X'…'", "XA COMMIT X'…',X'…'"}
				}
				return m
			}(),
			hookCalls: []string{"prepared", "committed"},
			counted:   "txn committed",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			be := newFakeBackend()
			be.lastInsertID = 7
			var calls []string
			var counts xaCounts
			s := shardedFakeSession(t, be, func(p string) { calls = append(calls, p) }, &counts)
			var w clientRecorder
			err := s.Query(context.Background(), c.sql, false, &w)
			if c.fail {
				if sqlCode(err) != 1146 {
					t.Fatalf("error %v, want the failing shard's 1146", err)
				}
				if s.diag.last.Errors != 1 {
					t.Errorf("diagnostics after the failure: %+v", s.diag)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			wantShardLogs(t, shardLogs(be), c.want)
			if !slices.Equal(calls, c.hookCalls) {
				t.Errorf("commit points reached %q, want %q", calls, c.hookCalls)
			}
			want := map[string]int{}
			if c.counted != "" {
				want[c.counted] = 1
			}
			if !maps.Equal(counts.n, want) && len(counts.n)+len(want) > 0 {
				t.Errorf("XA metrics %v, want %v", counts.n, want)
			}
			for shard := range c.want {
				if n := be.idleCount(shard); n != 1 {
					t.Errorf("shard %s: %d idle connections after the write, want its one back in the pool", shard, n)
				}
			}
			if c.fail {
				return
			}
			oks := w.oks()
			if len(oks) != 1 {
				t.Fatalf("%d OK packets to the client, want 1", len(oks))
			}
			if strings.HasPrefix(c.sql, "INSERT") {
				// The fake reports 1 affected row and insert id 7 for every INSERT.
				stmts := 0
				for _, l := range c.want {
					for _, q := range l {
						if strings.HasPrefix(q, "INSERT INTO `") {
							stmts++
						}
					}
				}
				if oks[0].AffectedRows != uint64(stmts) || oks[0].LastInsertID != 7 || s.ids.last != 7 {
					t.Errorf("OK %+v, session last insert id %d; want %d affected rows summed and id 7", oks[0], s.ids.last, stmts)
				}
				if s.diag.last.RowCount != int64(stmts) {
					t.Errorf("ROW_COUNT() %d, want %d", s.diag.last.RowCount, stmts)
				}
			}
		})
	}
}

// TestMultiShardWriteInTransaction: inside BEGIN a write spanning shards is refused and the
// transaction rolled back; one spanning two tables of one shard runs under a savepoint.
func TestMultiShardWriteInTransaction(t *testing.T) {
	be := newFakeBackend()
	s := shardedFakeSession(t, be, nil, nil)
	var w clientRecorder
	exec(t, s, "BEGIN", &w)
	exec(t, s, "INSERT INTO accounts (account_id, balance) VALUES (0, 1), (1, 2)", &w)
	err := s.Query(context.Background(), "INSERT INTO orders (id, user_id) VALUES (1, 1), (2, 2)", false, &w)
	if sqlCode(err) != sqlerr.ErNotSupportedYet {
		t.Fatalf("a write to a second shard in a transaction: %v, want 1235", err)
	}
	wantShardLogs(t, shardLogs(be), map[string][]string{
		"s0": {"BEGIN", "SAVEPOINT shardproxy_stmt", "INSERT INTO `accounts_0000` (`account_id`,`balance`) VALUES (0,1)",
			"INSERT INTO `accounts_0001` (`account_id`,`balance`) VALUES (1,2)", "ROLLBACK"},
	})
	if s.inTransaction() {
		t.Error("the transaction is still open after the refusal")
	}
}

func TestExplainMultiShardWrite(t *testing.T) {
	s, _ := newTestSession(t, plantest.ShardedConfig(), "app", "shop")
	steps, err := s.Explain("INSERT INTO orders (id, user_id) VALUES (1, 1), (2, 2)")
	if err != nil {
		t.Fatal(err)
	}
	want := []ExplainStep{
		{Step: "write", Shard: "s1", Detail: "INSERT INTO `orders` (`id`,`user_id`) VALUES (1,1)"},
		{Step: "write", Shard: "s0", Detail: "INSERT INTO `orders` (`id`,`user_id`) VALUES (2,2)"},
		{Step: "commit", Shard: "s1", Detail: "atomic over 2 shards: XA PREPARE on the others, then this coordinator's COMMIT with the decision row, then XA COMMIT"},
	}
	if !slices.Equal(steps, want) {
		t.Errorf("EXPLAIN SHARDS\n got %q\nwant %q", steps, want)
	}
}

// TestInsertRowSlots pins the slot of each row of multi-row INSERTs (the split's input).
func TestInsertRowSlots(t *testing.T) {
	cases := []struct {
		name   string
		sql    string
		params []int64
		want   []int
		err    uint16
	}{
		{"hash: users 1..4", "INSERT INTO orders (id, user_id) VALUES (1, 1), (2, 2), (3, 3), (4, 4)", nil, []int{1, 0, 1, 3}, 0},
		{"key not first", "INSERT INTO orders (user_id, id) VALUES (2, 1), (1, 2)", nil, []int{0, 1}, 0},
		{"mod, table per slot", "INSERT INTO accounts (account_id) VALUES (0), (9), (15), (-1)", nil, []int{0, 1, 7, 7}, 0},
		{"range", "INSERT INTO events (id) VALUES (5), (150), (250), (99)", nil, []int{0, 1, 2, 0}, 0},
		{"parameters", "INSERT INTO orders (id, user_id) VALUES (?, ?), (?, ?)", []int64{9, 2, 9, 1}, []int{0, 1}, 0},
		{"string and decimal keys route like integers", "INSERT INTO orders (id, user_id) VALUES (1, '2'), (2, 1.0)", nil, []int{0, 1}, 0},
		{"parameters unknown at prepare time", "INSERT INTO orders (id, user_id) VALUES (?, ?)", nil, nil, sqlerr.ErUnknownError},
		{"no key column", "INSERT INTO orders (id) VALUES (1), (2)", nil, nil, sqlerr.ErNotSupportedYet},
		{"expression key", "INSERT INTO orders (id, user_id) VALUES (1, 1), (2, 1 + 1)", nil, nil, sqlerr.ErNotSupportedYet},
		{"short row", "INSERT INTO orders (id, user_id) VALUES (1, 1), (2)", nil, nil, 1136},
		{"INSERT SET", "INSERT INTO orders SET id = 1, user_id = 2", nil, nil, sqlerr.ErNotSupportedYet},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, snap := newTestSession(t, plantest.ShardedConfig(), "app", "shop")
			st, err := s.parseOne(c.sql)
			if err != nil {
				t.Fatal(err)
			}
			a := &planner.Analyzer{Planner: s.planner(snap), Snap: snap, Ctes: map[string]bool{}, Sources: map[*ast.TableName]*ast.TableSource{}}
			st.Accept(a)
			planner.NumberParams(a.Markers)
			got, err := planner.InsertRowSlots(st.(*ast.InsertStmt), a.Refs[0], int64Params(c.params))
			if c.err != 0 {
				if sqlCode(err) != c.err {
					t.Fatalf("error %v, want %d", err, c.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Errorf("slots %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

// TestMultiShardWriteSessionState: a split INSERT in a multi-statement query announces the
// next result; in a sticky session its connections stay pinned after the commit.
func TestMultiShardWriteSessionState(t *testing.T) {
	be := newFakeBackend()
	s := shardedFakeSession(t, be, nil, nil)
	var w clientRecorder
	if err := s.Query(context.Background(), "INSERT INTO orders (id, user_id) VALUES (1, 1), (2, 2); SELECT 1", true, &w); err != nil {
		t.Fatal(err)
	}
	oks := w.oks()
	if len(oks) == 0 || oks[0].Status&wire.StatusMoreResults == 0 {
		t.Fatalf("the split INSERT's OK does not announce more results: %+v", oks)
	}
	be.takeLog()
	exec(t, s, "SET @x = 1", &w) // user variables pin connections
	exec(t, s, "INSERT INTO orders (id, user_id) VALUES (@x, 1), (2, 2)", &w)
	if len(s.pinned) != 2 || s.pinned["s0"] == nil || s.pinned["s1"] == nil {
		t.Errorf("pinned after the split INSERT in a sticky session: %v, want s0 (the SET's) and s1", slices.Sorted(maps.Keys(s.pinned)))
	}
	if s.inTransaction() {
		t.Error("the session is in a transaction after the multi-shard commit")
	}
}
