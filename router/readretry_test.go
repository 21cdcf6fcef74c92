package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// replicaFake is a fakeBackend that serves replica reads: a replica of shard sN is the fake
// shard "sNr" (its log lines say which served a statement). A shard in primaryOnly has no
// fit replica: the read goes to its primary, as the topology does.
type replicaFake struct {
	*fakeBackend
	primaryOnly map[string]bool
	reads       map[string]ReplicaRead // the last replica read asked of each shard
}

func (b *replicaFake) AcquireReplica(ctx context.Context, shard *rules.Shard, r ReplicaRead) (Conn, error) {
	b.mu.Lock()
	b.reads[shard.Name] = r
	b.mu.Unlock()
	if b.primaryOnly[shard.Name] {
		return b.Acquire(ctx, shard, rules.RolePrimary)
	}
	return b.Acquire(ctx, &rules.Shard{Name: shard.Name + "r", Database: shard.Database}, rules.RoleReplica)
}

var _ ReplicaBackend = (*replicaFake)(nil)

// servedBy lists, in order, the servers of log whose statement contains what.
func servedBy(log []string, what string) []string {
	var out []string
	for _, l := range log {
		server, stmt, _ := strings.Cut(l, ": ")
		if strings.Contains(stmt, what) {
			name, _, _ := strings.Cut(server, "#")
			out = append(out, name)
		}
	}
	return out
}

// TestSessionScatterReadsFromReplicas: under a read/write split, each shard's part of a
// scatter read goes to that shard's replica, asked to have applied the session's last write
// there; a shard whose last write is unknown, or without a fit replica, is read on its
// primary; a transaction, the PRIMARY hint and a locking read keep every shard on its primary.
func TestSessionScatterReadsFromReplicas(t *testing.T) {
	be := &replicaFake{fakeBackend: newFakeBackend(), primaryOnly: map[string]bool{"s3": true}, reads: map[string]ReplicaRead{}}
	cfg := plantest.ShardedConfig()
	cfg.Databases[0].ReadWriteSplit = true
	snap, err := rules.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := fakeSession(t, New(Options{Rules: rules.NewStore(snap), Backend: be}), "app", 1)
	s.db = "shop"
	s.reads.gtids = map[string]string{"s1": gtidUnknown, "s2": "0-1-5"}
	var w clientRecorder
	ctx := context.Background()
	check := func(what, match string, want ...string) {
		t.Helper()
		if got := servedBy(be.takeLog(), match); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: served by %q, want %q", what, got, want)
		}
	}

	exec(t, s, "SELECT * FROM orders", &w)
	check("a scatter read", "orders", "s0r", "s1", "s2r", "s3")
	if r := be.reads["s2"]; r.After != "0-1-5" || r.MaxLag != rules.DefaultMaxReplicaLag {
		t.Errorf("the replica read of s2 asked for %+v, want the session's last GTID there and the default lag bound", r)
	}
	if r := be.reads["s0"]; r.After != "" {
		t.Errorf("the replica read of s0 asked for %+v, want no GTID (no write there)", r)
	}

	st, err := s.Prepare(ctx, "SELECT * FROM orders WHERE id > ?")
	if err != nil {
		t.Fatal(err)
	}
	be.takeLog()
	if err := s.Execute(ctx, st, []wire.Param{intParam(3)}, &w); err != nil {
		t.Fatal(err)
	}
	check("a prepared scatter read", "orders", "s0r", "s1", "s2r", "s3")

	for _, sql := range []string{"SELECT /*+ PRIMARY */ * FROM orders", "SELECT * FROM orders FOR UPDATE"} {
		exec(t, s, sql, &w)
		check(sql, "orders", "s0", "s1", "s2", "s3")
	}
	exec(t, s, "BEGIN", &w)
	exec(t, s, "SELECT * FROM orders", &w)
	check("a scatter read in a transaction", "orders", "s0", "s1", "s2", "s3")
	exec(t, s, "COMMIT", &w)
	be.takeLog()
	exec(t, s, "SELECT * FROM orders", &w)
	check("after the transaction", "orders", "s0r", "s1", "s2r", "s3")
}

// loseOnce makes the first command of kind cmd on shard whose text contains what die
// unanswered, and counts such commands.
func loseOnce(be *fakeBackend, shard string, cmd byte, what string) *int {
	n := new(int)
	be.lose = func(sh string, p []byte) bool {
		if sh != shard || p[0] != cmd || !strings.Contains(string(p[1:]), what) {
			return false
		}
		*n++
		return *n == 1
	}
	return n
}

// TestSessionReadRetriedAfterLostConnection: a pure read whose backend connection dies
// before any of its answer reached the client runs once more on a fresh connection (single
// shard, scatter, prepared), and so does every COM_STMT_PREPARE; a write, a read inside a
// transaction and a read calling a function that may write are not run again and fail.
func TestSessionReadRetriedAfterLostConnection(t *testing.T) {
	ctx := context.Background()
	run := func(t *testing.T, setup ...string) (*fakeBackend, *Session) {
		t.Helper()
		be := newFakeBackend()
		s := fakeSession(t, shardedRouter(t, be), "app", 1)
		s.db = "shop"
		var w clientRecorder
		for _, q := range setup {
			exec(t, s, q, &w)
		}
		return be, s
	}
	for _, c := range []struct {
		name, sql, shard string
		setup            []string
		retried          bool
	}{
		{"SingleShardRead", "SELECT * FROM orders WHERE user_id = 1", "s1", nil, true},
		{"ScatterRead", "SELECT * FROM orders", "s2", nil, true},
		{"Show", "SHOW COLUMNS FROM settings", "s0", nil, true},
		{"StoredFunction", "SELECT f(id) FROM orders WHERE user_id = 1", "s1", nil, false},
		{"LockingRead", "SELECT * FROM orders WHERE user_id = 1 FOR UPDATE", "s1", nil, false},
		{"Write", "INSERT INTO orders (user_id, id) VALUES (1, 5)", "s1", nil, false},
		{"ReadInTransaction", "SELECT * FROM orders WHERE user_id = 1", "s1", []string{"BEGIN"}, false},
		{"ScatterInTransaction", "SELECT * FROM orders", "s2", []string{"BEGIN"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			be, s := run(t, c.setup...)
			what := c.sql[:10]
			if strings.HasPrefix(c.sql, "SHOW") {
				what = "settings"
			}
			n := loseOnce(be, c.shard, engine.ComQuery, what)
			var w clientRecorder
			err := s.Query(ctx, c.sql, false, &w)
			switch {
			case c.retried && (err != nil || *n != 2):
				t.Errorf("%s: %v after %d attempts on %s, want success on the second", c.sql, err, *n, c.shard)
			case !c.retried && (err == nil || *n != 1):
				t.Errorf("%s: %v after %d attempts on %s, want the lost connection's error after one", c.sql, err, *n, c.shard)
			case !c.retried && !errors.Is(err, engine.ErrBackendIO) && !errors.Is(err, sqlerr.ErrFatal):
				t.Errorf("%s: %v, want a lost connection", c.sql, err)
			}
			if c.name == "Write" && !errors.Is(err, sqlerr.ErrFatal) {
				t.Errorf("a write whose connection died: %v, want the client connection closed (outcome unknown)", err)
			}
		})
	}

	t.Run("Prepared", func(t *testing.T) {
		for _, c := range []struct {
			sql     string
			retried bool
		}{
			{"SELECT * FROM orders WHERE user_id = ?", true},
			{"SELECT f(id) FROM orders WHERE user_id = ?", false},
			{"UPDATE orders SET id = 2 WHERE user_id = ?", false},
		} {
			be, s := run(t)
			// COM_STMT_PREPARE runs nothing: prepared again, whatever the statement.
			n := loseOnce(be, "s0", engine.ComStmtPrepare, "")
			st, err := s.Prepare(ctx, c.sql)
			if err != nil || *n != 2 {
				t.Fatalf("prepare %s: %v after %d attempts, want success on the second", c.sql, err, *n)
			}
			n = loseOnce(be, "s1", engine.ComStmtExecute, "")
			var w clientRecorder
			err = s.Execute(ctx, st, []wire.Param{intParam(1)}, &w)
			switch {
			case c.retried && (err != nil || *n != 2):
				t.Errorf("%s: %v after %d executions, want success on the second", c.sql, err, *n)
			case !c.retried && (err == nil || *n != 1):
				t.Errorf("%s: %v after %d executions, want the lost connection's error after one", c.sql, err, *n)
			}
			if c.retried {
				if got := servedBy(be.takeLog(), "PREPARE"); strings.Count(strings.Join(got, " "), "s1") != 2 {
					t.Errorf("%s: prepared on %q, want once more on the fresh connection", c.sql, got)
				}
			}
		}
	})
}

// TestRetryRead: a lost connection is retried only when nothing of the answer reached the
// client, the statement's deadline has not passed and the session holds no backend state.
func TestRetryRead(t *testing.T) {
	lost := fmt.Errorf("%w: EOF", engine.ErrBackendIO)
	passed, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for _, c := range []struct {
		name      string
		ctx       context.Context
		sent      int // packets written to the client before the connection broke
		retryable bool
		sticky    bool
		err       error
		calls     int
	}{
		{"NothingSent", context.Background(), 0, true, false, lost, 2},
		{"HeaderSent", context.Background(), 1, true, false, lost, 1},
		{"RowsSent", context.Background(), 3, true, false, lost, 1},
		{"NotARead", context.Background(), 0, false, false, lost, 1},
		{"StickySession", context.Background(), 0, true, true, lost, 1},
		{"DeadlinePassed", passed, 0, true, false, lost, 1},
		{"StatementError", context.Background(), 0, true, false, sqlerr.New(1146, "Table 'x' doesn't exist"), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := fakeSession(t, fakeRouter(t, newFakeBackend()), "app", 1)
			s.reads.retryable, s.sticky = c.retryable, c.sticky
			calls := 0
			var w clientRecorder
			err := s.retryRead(c.ctx, "s0", &w, func(w wire.PacketWriter) error {
				calls++
				if calls > 1 {
					return nil
				}
				for range c.sent {
					if err := w.WritePacket([]byte{1}); err != nil {
						return err
					}
				}
				return c.err
			})
			if calls != c.calls || (c.calls == 1) != (err != nil) {
				t.Errorf("%d attempts, error %v; want %d attempts", calls, err, c.calls)
			}
		})
	}
}
