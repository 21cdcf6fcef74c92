package router

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestBranchPanicFailsOnlyItsBranch: a panic in the goroutine of one branch of a
// multi-shard write fails the write (every branch rolled back, the panicking branch's
// connection broken), not the process; the session keeps working.
func TestBranchPanicFailsOnlyItsBranch(t *testing.T) {
	be := newFakeBackend()
	s := shardedFakeSession(t, be, nil, nil)
	var w clientRecorder
	// User 1 is on s1 (the coordinator), user 2 on s0: the participant's goroutine panics.
	err := s.Query(context.Background(), "INSERT INTO orders (id, user_id) VALUES (1, 1), ('PANIC', 2)", false, &w)
	if sqlCode(err) != sqlerr.ErUnknownError {
		t.Fatalf("error %v, want 1105 for the panicking branch", err)
	}
	logs := shardLogs(be)
	if got := logs["s1"]; len(got) == 0 || got[len(got)-1] != "ROLLBACK" {
		t.Errorf("coordinator s1 got %q, want its transaction rolled back", got)
	}
	if n := be.idleCount("s0"); n != 0 {
		t.Errorf("s0: %d idle connections, want the panicking branch's connection closed", n)
	}
	if n := be.idleCount("s1"); n != 1 {
		t.Errorf("s1: %d idle connections, want the coordinator's back", n)
	}
	if err := s.Query(context.Background(), "INSERT INTO orders (id, user_id) VALUES (1, 1), (2, 2)", false, &w); err != nil {
		t.Errorf("the next write: %v", err)
	}
}

// TestAbandon: after a panic in the session's goroutine (which the protocol layer
// recovers), Abandon gives back every backend connection the session holds, pinned or in
// flight, as broken.
func TestAbandon(t *testing.T) {
	be := newFakeBackend()
	s := shardedFakeSession(t, be, nil, nil)
	var w clientRecorder
	if err := s.Query(context.Background(), "BEGIN", false, &w); err != nil {
		t.Fatal(err)
	}
	if err := s.Query(context.Background(), "INSERT INTO orders (id, user_id) VALUES (1, 1)", false, &w); err != nil {
		t.Fatal(err)
	}
	if len(s.pinned) == 0 {
		t.Fatalf("pinned %v, want the transaction's connections", s.pinned)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the statement did not panic")
			}
		}()
		_ = s.Query(context.Background(), "SELECT * FROM orders WHERE user_id = 2 AND note = 'PANIC'", false, &w)
	}()
	s.Abandon()
	s.Close()
	if len(s.pinned) != 0 || len(s.held.conns) != 0 {
		t.Errorf("after Abandon: pinned %v, held %v", s.pinned, s.held.conns)
	}
	for _, shard := range []string{"s0", "s1"} {
		if n := be.idleCount(shard); n != 0 {
			t.Errorf("%s: %d idle connections after Abandon, want none reused", shard, n)
		}
	}
}

// TestHeldConnsReleaseOnce: a connection goes back to the backend once; a second release
// is ignored (the pool may have handed it to another session by then).
func TestHeldConnsReleaseOnce(t *testing.T) {
	be := newFakeBackend()
	h := heldConns{be: be, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	shard := &rules.Shard{Name: "s0"}
	a, _ := be.Acquire(context.Background(), shard, rules.RolePrimary)
	b, _ := be.Acquire(context.Background(), shard, rules.RolePrimary)
	h.hold(a)
	h.hold(b)
	h.release(a)
	h.release(a)
	if h.holds(a) || !h.holds(b) || a.(*fakeConn).released != 1 || be.idleCount("s0") != 1 {
		t.Errorf("after releasing a twice: holds a %v, b %v; a released %d times, %d idle",
			h.holds(a), h.holds(b), a.(*fakeConn).released, be.idleCount("s0"))
	}
	h.abandon()
	if len(h.conns) != 0 || !b.State().Broken() || be.idleCount("s0") != 1 {
		t.Errorf("after abandon: %d held, b broken %v, %d idle", len(h.conns), b.State().Broken(), be.idleCount("s0"))
	}
}

// TestHeldConnsRecovered: a panic in a goroutine working on a connection becomes that
// goroutine's error, and the connection is broken.
func TestHeldConnsRecovered(t *testing.T) {
	h := heldConns{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c := &fakeConn{be: newFakeBackend(), shard: "s0"}
	err := func() (err error) {
		defer h.recovered(c, &err)
		panic("boom")
	}()
	if sqlCode(err) != sqlerr.ErUnknownError || !c.State().Broken() {
		t.Errorf("recovered: %v, broken %v; want 1105 and a broken connection", err, c.State().Broken())
	}
}
