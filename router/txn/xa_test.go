package txn

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

func TestGtrid(t *testing.T) {
	co := NewCoordinator(CoordinatorOptions{})
	sh := "a-shard-with-a-rather-long-name-that-would-not-fit-in-an-xid"
	before := time.Now().Truncate(time.Millisecond)
	g := co.Gtrid(sh)
	if len(g) > 64 {
		t.Errorf("gtrid %q is %d bytes, XA allows 64", g, len(g))
	}
	created, tag, ok := parseGtrid(g)
	if !ok || tag != shardTag(sh) || created.Before(before) || created.After(time.Now()) {
		t.Errorf("parseGtrid(%q) = %v, %q, %v", g, created, tag, ok)
	}
	if g2 := co.Gtrid(sh); g2 == g {
		t.Errorf("two transactions got the same gtrid %q", g)
	}
	for _, bad := range []string{"other:1:2:3:4", "shardproxy:1:zz:3:4", "shardproxy:1:2"} {
		if _, _, ok := parseGtrid(bad); ok {
			t.Errorf("parseGtrid(%q) accepted a gtrid that is not the proxy's", bad)
		}
	}
}

func TestParseRecoverRow(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := []struct {
		name   string
		row    []*string
		want   xid
		format int
		ok     bool
	}{
		{"gtrid and bqual", []*string{str("1"), str("5"), str("2"), str("abcdes1")}, xid{"abcde", "s1"}, 1, true},
		{"empty bqual", []*string{str("7"), str("3"), str("0"), str("abc")}, xid{"abc", ""}, 7, true},
		{"lengths beyond the data", []*string{str("1"), str("5"), str("3"), str("abcdes1")}, xid{}, 0, false},
		{"NULL data", []*string{str("1"), str("5"), str("2"), nil}, xid{}, 0, false},
		{"short row", []*string{str("1"), str("5")}, xid{}, 0, false},
		{"not numbers", []*string{str("x"), str("5"), str("2"), str("abcdes1")}, xid{}, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x, format, ok := parseRecoverRow(c.row)
			if x != c.want || format != c.format || ok != c.ok {
				t.Errorf("parseRecoverRow = %+v, %d, %v; want %+v, %d, %v", x, format, ok, c.want, c.format, c.ok)
			}
		})
	}
}

// fakeConn is a backend connection that records the statements it receives in its log and
// answers them as its branch's script says. Only the methods the coordinator uses exist.
type fakeConn struct {
	engine.Conn
	wc     *wire.Conn // for engine.QueryRows; nil when the test sends none
	shard  string
	log    *callLog
	answer func(sql string) error // nil: OK
	st     wire.ConnState
}

func (c *fakeConn) Exec(_ context.Context, sql string) (wire.OK, error) {
	c.log.add(c.shard, sql)
	if c.answer != nil {
		if err := c.answer(sql); err != nil {
			return wire.OK{}, err
		}
	}
	return wire.OK{Status: wire.StatusAutocommit}, nil
}
func (c *fakeConn) State() *wire.ConnState { return &c.st }
func (c *fakeConn) ID() uint32             { return 1 }
func (c *fakeConn) Wire() *wire.Conn       { return c.wc }
func (c *fakeConn) Server() string         { return "b" + strings.TrimPrefix(c.shard, "s") }

// fakeBranch runs one statement of its own ("<shard> rows") on its connection.
type fakeBranch struct {
	c       *fakeConn
	panics  bool
	settled bool
}

func (b *fakeBranch) Shard() string     { return b.c.shard }
func (b *fakeBranch) Conn() engine.Conn { return b.c }
func (b *fakeBranch) Settled()          { b.settled = true }
func (b *fakeBranch) Exec(ctx context.Context, sql string) error {
	_, err := b.c.Exec(ctx, sql)
	return err
}
func (b *fakeBranch) Run(ctx context.Context) error {
	if b.panics {
		panic("bad bytes")
	}
	return b.Exec(ctx, b.c.shard+" rows")
}

// callLog records statements per shard; safe for the branches' goroutines.
type callLog struct {
	mu sync.Mutex
	m  map[string][]string
}

var hexLiteral = regexp.MustCompile(`X'[0-9a-f]*'`)

func (l *callLog) add(shard, sql string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string][]string{}
	}
	l.m[shard] = append(l.m[shard], hexLiteral.ReplaceAllString(sql, "X'…'"))
}

// logMetrics is an XAMetrics that records what it counts in a callLog, as "shard" metrics.
type logMetrics struct{ l *callLog }

func (m logMetrics) XATransaction(outcome string) { m.l.add("metrics", "txn "+outcome) }
func (m logMetrics) XARecovered(decision string)  { m.l.add("metrics", "recovered "+decision) }

var (
	errDup  = sqlerr.New(1062, "Duplicate entry '1' for key 'PRIMARY'")
	errLost = fmt.Errorf("%w: connection reset", engine.ErrBackendIO)
)

// TestCoordinator: the commit protocol each branch receives, the error, the commit points
// reached and the outcome counted, by where the write fails.
func TestCoordinator(t *testing.T) {
	const (
		xs       = "XA START X'…',X'…'"
		xe       = "XA END X'…',X'…'"
		xp       = "XA PREPARE X'…',X'…'"
		xc       = "XA COMMIT X'…',X'…'"
		xr       = "XA ROLLBACK X'…',X'…'"
		decision = "INSERT INTO shardproxy.xa_decisions (gtrid, decision) VALUES (X'…', 'commit')"
	)
	fail := func(stmt string, err error) func(*fakeConn) {
		return func(c *fakeConn) {
			c.answer = func(sql string) error {
				if strings.HasPrefix(sql, stmt) {
					if errors.Is(err, engine.ErrBackendIO) {
						c.st.MarkBroken()
					}
					return err
				}
				return nil
			}
		}
	}
	cases := []struct {
		name    string
		shards  []string
		script  map[string]func(*fakeConn)
		panics  string // the shard whose statements panic
		want    map[string][]string
		err     error // errors.Is the error Commit returns; nil: success
		code    uint16
		hooks   []string
		counted string
		broken  []string // connections marked broken afterwards
	}{
		{
			name:   "every branch commits: the decision, then XA COMMIT",
			shards: []string{"s1", "s0"},
			want: map[string][]string{
				"s1": {"START TRANSACTION", "s1 rows", decision, "COMMIT"},
				"s0": {xs, "s0 rows", xe, xp, xc},
			},
			hooks: []string{"prepared", "committed"}, counted: "txn committed",
		},
		{
			name:   "one branch: a local transaction, no XA, nothing counted",
			shards: []string{"s0"},
			want:   map[string][]string{"s0": {"START TRANSACTION", "s0 rows", "COMMIT"}},
		},
		{
			name:   "a failing participant rolls back every branch",
			shards: []string{"s1", "s0"},
			script: map[string]func(*fakeConn){"s0": fail("s0 rows", errDup)},
			want: map[string][]string{
				"s1": {"START TRANSACTION", "s1 rows", decision, "ROLLBACK"},
				"s0": {xs, "s0 rows", xe, xr},
			},
			code: 1062, counted: "txn rolled_back",
		},
		{
			name:   "a failing coordinator rolls back the prepared participant",
			shards: []string{"s1", "s0"},
			script: map[string]func(*fakeConn){"s1": fail("s1 rows", errDup)},
			want: map[string][]string{
				"s1": {"START TRANSACTION", "s1 rows", "ROLLBACK"},
				"s0": {xs, "s0 rows", xe, xp, xr},
			},
			code: 1062, counted: "txn rolled_back",
		},
		{
			name:   "a shard's own error wins over a lost connection",
			shards: []string{"s1", "s0", "s2"},
			script: map[string]func(*fakeConn){"s0": fail("s0 rows", errLost), "s2": fail("s2 rows", errDup)},
			want: map[string][]string{
				"s1": {"START TRANSACTION", "s1 rows", decision, "ROLLBACK"},
				"s0": {xs, "s0 rows"},
				"s2": {xs, "s2 rows", xe, xr},
			},
			code: 1062, counted: "txn rolled_back", broken: []string{"s0"},
		},
		{
			name:   "the coordinator lost during COMMIT: unknown, left to recovery",
			shards: []string{"s1", "s0"},
			script: map[string]func(*fakeConn){"s1": fail("COMMIT", errLost)},
			want: map[string][]string{
				"s1": {"START TRANSACTION", "s1 rows", decision, "COMMIT"},
				"s0": {xs, "s0 rows", xe, xp},
			},
			err: sqlerr.ErrLost, hooks: []string{"prepared"}, counted: "txn unknown", broken: []string{"s0", "s1"},
		},
		{
			name:   "one branch lost during COMMIT: the client connection is closed",
			shards: []string{"s0"},
			script: map[string]func(*fakeConn){"s0": fail("COMMIT", errLost)},
			want:   map[string][]string{"s0": {"START TRANSACTION", "s0 rows", "COMMIT"}},
			err:    sqlerr.ErrLost, broken: []string{"s0"},
		},
		{
			name:   "the coordinator's COMMIT refused: every branch rolled back",
			shards: []string{"s1", "s0"},
			script: map[string]func(*fakeConn){"s1": fail("COMMIT", sqlerr.New(1180, "Got error during COMMIT"))},
			want: map[string][]string{
				"s1": {"START TRANSACTION", "s1 rows", decision, "COMMIT", "ROLLBACK"},
				"s0": {xs, "s0 rows", xe, xp, xr},
			},
			code: 1180, hooks: []string{"prepared"}, counted: "txn rolled_back",
		},
		{
			name:   "XA COMMIT failing after the decision leaves the branch to recovery",
			shards: []string{"s1", "s0"},
			script: map[string]func(*fakeConn){"s0": fail("XA COMMIT", sqlerr.New(1399, "XAER_RMFAIL"))},
			want: map[string][]string{
				"s1": {"START TRANSACTION", "s1 rows", decision, "COMMIT"},
				"s0": {xs, "s0 rows", xe, xp, xc},
			},
			hooks: []string{"prepared", "committed"}, counted: "txn committed", broken: []string{"s0"},
		},
		{
			name:   "XA ROLLBACK failing closes the connection; one already gone does not",
			shards: []string{"s1", "s0", "s2"},
			script: map[string]func(*fakeConn){
				"s1": fail("s1 rows", errDup),
				"s0": fail("XA ROLLBACK", sqlerr.New(1399, "XAER_RMFAIL")),
				"s2": fail("XA ROLLBACK", sqlerr.New(1397, "XAER_NOTA")),
			},
			want: map[string][]string{
				"s1": {"START TRANSACTION", "s1 rows", "ROLLBACK"},
				"s0": {xs, "s0 rows", xe, xp, xr},
				"s2": {xs, "s2 rows", xe, xp, xr},
			},
			code: 1062, counted: "txn rolled_back", broken: []string{"s0"},
		},
		{
			name:   "a panic fails only its branch, which is closed",
			shards: []string{"s1", "s0"},
			panics: "s0",
			want: map[string][]string{
				"s1": {"START TRANSACTION", "s1 rows", decision, "ROLLBACK"},
				"s0": {xs},
			},
			err: engine.ErrBackendIO, counted: "txn rolled_back", broken: []string{"s0"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log callLog
			var hooks []string
			var counts callLog
			co := NewCoordinator(CoordinatorOptions{Metrics: logMetrics{&counts}, TestHook: func(p string) { hooks = append(hooks, p) }})
			var bs []Branch
			var fbs []*fakeBranch
			for _, sh := range c.shards {
				fc := &fakeConn{shard: sh, log: &log}
				fc.st.SetStatus(wire.StatusAutocommit)
				if f := c.script[sh]; f != nil {
					f(fc)
				}
				fb := &fakeBranch{c: fc, panics: c.panics == sh}
				bs, fbs = append(bs, fb), append(fbs, fb)
			}
			err := co.Commit(context.Background(), Write{Gtrid: co.Gtrid(c.shards[0]), Branches: bs, ConnID: 7})
			switch {
			case c.code != 0:
				if e, ok := sqlerr.As(err); !ok || e.Code != c.code {
					t.Errorf("error %v, want %d", err, c.code)
				}
			case c.err != nil:
				if !errors.Is(err, c.err) {
					t.Errorf("error %v, want %v", err, c.err)
				}
			case err != nil:
				t.Errorf("error %v, want success", err)
			}
			for sh, w := range c.want {
				if got := log.m[sh]; !slices.Equal(got, w) {
					t.Errorf("shard %s received\n%q\nwant\n%q", sh, got, w)
				}
			}
			if len(log.m) != len(c.want) {
				t.Errorf("shards reached %v, want %v", slices.Sorted(maps.Keys(log.m)), slices.Sorted(maps.Keys(c.want)))
			}
			if !slices.Equal(hooks, c.hooks) {
				t.Errorf("commit points reached %q, want %q", hooks, c.hooks)
			}
			var want []string
			if c.counted != "" {
				want = []string{c.counted}
			}
			if got := counts.m["metrics"]; !slices.Equal(got, want) {
				t.Errorf("XA metrics %v, want %v", got, want)
			}
			var broken []string
			for _, fb := range fbs {
				if fb.c.st.Broken() {
					broken = append(broken, fb.c.shard)
				}
				if !fb.settled {
					t.Errorf("branch %s was never settled", fb.c.shard)
				}
			}
			slices.Sort(broken)
			if !slices.Equal(broken, c.broken) {
				t.Errorf("broken connections %v, want %v", broken, c.broken)
			}
		})
	}
}

// TestDecisionDDL: the decision log's statements name the table the coordinator writes.
func TestDecisionDDL(t *testing.T) {
	ddl := DecisionDDL()
	if len(ddl) != 2 || !strings.Contains(ddl[0], DecisionSchema) || !strings.Contains(ddl[1], DecisionTable) {
		t.Errorf("DecisionDDL() = %q", ddl)
	}
	if got := decisionInsert("g"); got != "INSERT INTO shardproxy.xa_decisions (gtrid, decision) VALUES (X'67', 'commit')" {
		t.Errorf("decisionInsert = %q", got)
	}
}
