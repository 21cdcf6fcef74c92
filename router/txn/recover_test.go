package txn

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// fakeBackend hands out fakeConns and keeps those given back unbroken as idle. With query
// set, each connection's text queries (engine.QueryRows) are answered by it over a pipe;
// Close stops the goroutines serving them.
type fakeBackend struct {
	mu    sync.Mutex
	log   callLog
	idle  map[string][]*fakeConn
	query func(shard, q string) (cols []string, rows [][]*string)
	pipes []net.Conn
	wg    sync.WaitGroup
}

// serve answers the text queries a connection of shard sends on nc until it is closed.
func (be *fakeBackend) serve(nc net.Conn, shard string) {
	defer be.wg.Done()
	defer nc.Close() // a server that stops makes its client fail, not wait
	wc := wire.NewConn(nc, 4096)
	for {
		wc.ResetSeq() // each command starts a new exchange
		p, err := wc.ReadPacket()
		if err != nil || len(p) == 0 {
			return
		}
		names, rows := be.query(shard, string(p[1:]))
		cols := make([]wire.Column, len(names))
		for i, n := range names {
			cols[i] = wire.Column{Name: n, Charset: 63, Type: 0xfd}
		}
		if wire.WriteTextResult(wc, cols, rows, wire.StatusAutocommit) != nil || wc.Flush() != nil {
			return
		}
	}
}

// Close closes the pipes and waits for their servers.
func (be *fakeBackend) Close() {
	be.mu.Lock()
	for _, p := range be.pipes {
		_ = p.Close()
	}
	be.mu.Unlock()
	be.wg.Wait()
}

func (be *fakeBackend) Acquire(_ context.Context, shard *rules.Shard, _ rules.Role) (engine.Conn, error) {
	be.mu.Lock()
	defer be.mu.Unlock()
	if n := len(be.idle[shard.Name]); n > 0 {
		c := be.idle[shard.Name][n-1]
		be.idle[shard.Name] = be.idle[shard.Name][:n-1]
		return c, nil
	}
	c := &fakeConn{shard: shard.Name, log: &be.log}
	if be.query != nil {
		client, server := net.Pipe()
		be.pipes = append(be.pipes, client, server)
		c.wc = wire.NewConn(client, 4096)
		be.wg.Add(1)
		go be.serve(server, shard.Name)
	}
	return c, nil
}

func (be *fakeBackend) Release(c engine.Conn) {
	be.mu.Lock()
	defer be.mu.Unlock()
	fc := c.(*fakeConn)
	if fc.st.Broken() {
		return
	}
	if be.idle == nil {
		be.idle = map[string][]*fakeConn{}
	}
	be.idle[fc.shard] = append(be.idle[fc.shard], fc)
}

func (be *fakeBackend) idleCount(shard string) int {
	be.mu.Lock()
	defer be.mu.Unlock()
	return len(be.idle[shard])
}

// TestRecoveryPanicClosesItsConnection: a panic while a recovery pass works on a server
// fails that server's part of the pass, with its connection closed, not the process.
func TestRecoveryPanicClosesItsConnection(t *testing.T) {
	be := &fakeBackend{}
	rc := NewRecoverer(RecoverOptions{Backend: be})
	shard := &rules.Shard{Name: "s0"}
	err := rc.withConn(context.Background(), shard, func(c engine.Conn) error { panic("malformed XA RECOVER row") })
	if e, ok := sqlerr.As(err); !ok || e.Code != sqlerr.ErUnknownError {
		t.Fatalf("withConn = %v, want the panic as an error", err)
	}
	if n := be.idleCount("s0"); n != 0 {
		t.Errorf("%d idle connections on s0, want the panicking pass's connection closed", n)
	}
	if err := rc.withConn(context.Background(), shard, func(engine.Conn) error { return nil }); err != nil {
		t.Errorf("the next pass: %v", err)
	}
}

// twoShards is a database of two shards on two servers: both see writes spanning shards.
func twoShards(t *testing.T) *rules.Store {
	t.Helper()
	c := &rules.Config{
		Users:   []rules.UserConfig{{Name: "app", PasswordHash: "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"}},
		Schemes: []rules.SchemeConfig{{Name: "by_user", Function: "hash", Slots: 2, Shards: []string{"s0", "s1"}}},
		Databases: []rules.DatabaseConfig{{Name: "shop", DefaultShard: "s0", Tables: []rules.TableConfig{
			{Name: "orders", Kind: rules.KindSharded, Key: "user_id", Scheme: "by_user"},
		}}},
	}
	for _, n := range []string{"0", "1"} {
		c.Backends = append(c.Backends, rules.BackendConfig{Name: "b" + n, Addr: "10.0.0." + n + ":3306", User: "proxy", Password: "pw"})
		c.Shards = append(c.Shards, rules.ShardConfig{Name: "s" + n, Primary: "b" + n, Database: "shop_s" + n})
	}
	snap, err := rules.Build(c)
	if err != nil {
		t.Fatal(err)
	}
	return rules.NewStore(snap)
}

// TestRecoverPass: a pass commits the branches their coordinator decided to commit, rolls
// back old undecided ones after writing their 'abort' decision, leaves young ones pending,
// ignores branches that are not the proxy's, and deletes old decisions only after a pass
// that left nothing pending.
func TestRecoverPass(t *testing.T) {
	gtrid := func(age time.Duration, seq int) string {
		return fmt.Sprintf("%s%08x:%x:%x:%s", xaPrefix, 1, time.Now().Add(-age).UnixMilli(), seq, shardTag("s0"))
	}
	decided, orphan, young := gtrid(time.Hour, 1), gtrid(time.Hour, 2), gtrid(0, 3)
	str := func(s string) *string { return &s }
	recoverRow := func(g, bqual string) []*string {
		return []*string{str("1"), str(fmt.Sprint(len(g))), str(fmt.Sprint(len(bqual))), str(g + bqual)}
	}
	pending := []string{decided, orphan, young, "other:1:2:3:4"}
	var mu sync.Mutex
	be := &fakeBackend{query: func(shard, q string) ([]string, [][]*string) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case q == "XA RECOVER" && shard == "s1":
			var rows [][]*string
			for _, g := range pending {
				rows = append(rows, recoverRow(g, "s1"))
			}
			return []string{"formatID", "gtrid_length", "bqual_length", "data"}, rows
		case q == "XA RECOVER":
			return []string{"formatID", "gtrid_length", "bqual_length", "data"}, nil
		case shard == "s0" && q == fmt.Sprintf("SELECT decision FROM %s WHERE gtrid = X'%x'", DecisionTable, decided):
			return []string{"decision"}, [][]*string{{str("commit")}}
		}
		return []string{"decision"}, nil
	}}
	defer be.Close()
	var m callLog
	rc := NewRecoverer(RecoverOptions{Rules: twoShards(t), Backend: be, MinAge: time.Minute, Metrics: logMetrics{&m}})

	st, err := rc.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st != (RecoverStats{Committed: 1, RolledBack: 1, Pending: 1}) {
		t.Errorf("first pass %+v, want 1 committed, 1 rolled back, 1 pending", st)
	}
	want := map[string][]string{
		"s0": {"SET STATEMENT innodb_lock_wait_timeout = 2 FOR INSERT INTO shardproxy.xa_decisions (gtrid, decision) VALUES (X'…', 'abort')"},
		"s1": {"XA COMMIT X'…',X'…',1", "XA ROLLBACK X'…',X'…',1"},
	}
	for sh, w := range want {
		if got := be.log.m[sh]; !slices.Equal(got, w) {
			t.Errorf("first pass: shard %s received\n%q\nwant\n%q", sh, got, w)
		}
	}
	if got := m.m["metrics"]; !slices.Equal(got, []string{"recovered commit", "recovered abort"}) {
		t.Errorf("metrics %q", got)
	}

	// The branches resolved, the young one committed by its coordinator meanwhile.
	mu.Lock()
	pending = []string{"other:1:2:3:4"}
	mu.Unlock()
	be.log.m = nil
	st, err = rc.Pass(context.Background())
	if err != nil || st != (RecoverStats{}) {
		t.Errorf("second pass %+v, %v; want nothing to do", st, err)
	}
	for _, sh := range []string{"s0", "s1"} {
		got := be.log.m[sh]
		if len(got) != 1 || !strings.HasPrefix(got[0], "DELETE FROM shardproxy.xa_decisions WHERE created < NOW(6) - INTERVAL 1 DAY") {
			t.Errorf("second pass: shard %s received %q, want the old decisions deleted", sh, got)
		}
	}
}
