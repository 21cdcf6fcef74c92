package pool

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestPool runs the tests that need a server against one shared MariaDB container. Each
// subtest has a backend user of its own, so they run in parallel.
func TestPool(t *testing.T) {
	e := &env{srv: mariadbtest.Start(t, mariadbtest.WithDatabases("db1"))}
	e.root = e.srv.DB(t, "")
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *env)
	}{
		{"Reuse", testReuse},
		{"MaxOpenWaiter", testMaxOpenWaiter},
		{"AcquireTimeout", testAcquireTimeout},
		{"ContextWhileWaiting", testContextWhileWaiting},
		{"MaxLifetime", testMaxLifetime},
		{"IdleTimeoutMinIdle", testIdleTimeoutMinIdle},
		{"AcquirePreferring", testAcquirePreferring},
		{"AcquireMatching", testAcquireMatching},
		{"BrokenDiscarded", testBrokenDiscarded},
		{"CloseWakesWaiters", testCloseWakesWaiters},
		{"WrongPassword", testWrongPassword},
		{"Unreachable", testUnreachable},
		{"MaxIdle", testMaxIdle},
		{"Concurrent", testConcurrent},
		{"ResetDirty", testResetDirty},
		{"ResetSessionDefaults", testResetSessionDefaults},
		{"ReleasedInTransaction", testReleasedInTransaction},
		{"ExecResults", testExecResults},
		{"ExecErrors", testExecErrors},
		{"ExecContext", testExecContext},
		{"KillQuery", testKillQuery},
		{"KilledIdleGetsNoERR", testKilledIdleGetsNoERR},
		{"KillRacingCommand", testKillRacingCommand},
		{"KilledNeverHandedOut", testKilledNeverHandedOut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, e)
		})
	}
}

// testAcquireMatching: without a preferred connection, an idle one already using the wanted
// database is handed out before the top of the idle stack; with none, the top one is.
func testAcquireMatching(t *testing.T, e *env) {
	p, _ := e.newPool(t, nil)
	a, b := acquire(t, p), acquire(t, p)
	a.State().SetDB("db_a")
	b.State().SetDB("db_b")
	p.Release(a)
	p.Release(b) // b is on top
	got, err := p.AcquireMatching(t.Context(), nil, "db_a")
	if err != nil {
		t.Fatal(err)
	}
	if got != a {
		t.Fatalf("AcquireMatching(db_a) returned backend connection %d (db %q), want a (%d)", got.ID(), got.State().DB(), a.ID())
	}
	other, err := p.AcquireMatching(t.Context(), nil, "db_c")
	if err != nil {
		t.Fatal(err)
	}
	if other != b {
		t.Fatalf("AcquireMatching(db_c) returned %d, want the top idle b (%d)", other.ID(), b.ID())
	}
	p.Release(got)
	p.Release(other)
}

// testAcquirePreferring: a preferred idle connection is handed out even when it is not on
// top of the idle stack; one in use, or from another pool, is ignored.
func testAcquirePreferring(t *testing.T, e *env) {
	p, _ := e.newPool(t, nil)
	a, b := acquire(t, p), acquire(t, p)
	p.Release(a)
	p.Release(b) // b is on top: plain Acquire would return it
	got, err := p.AcquirePreferring(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	if got != a {
		t.Fatalf("AcquirePreferring(a) returned backend connection %d, want a (%d)", got.ID(), a.ID())
	}
	// a is in use now: preferring it again falls back to the idle b.
	other, err := p.AcquirePreferring(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	if other != b {
		t.Fatalf("AcquirePreferring(in-use a) returned %d, want the idle b (%d)", other.ID(), b.ID())
	}
	p.Release(got)
	p.Release(other)
	if s := p.Stats(); s.Idle != 2 || s.Open != 2 {
		t.Fatalf("after releasing both: %+v", s)
	}
}

func testReuse(t *testing.T, e *env) {
	p, user := e.newPool(t, nil)
	c := acquire(t, p)
	id := c.ID()
	if c.ServerVersion() == "" {
		t.Error("ServerVersion is empty")
	}
	exec(t, c, "SELECT 1")
	p.Release(c)
	if s := p.Stats(); s.Open != 1 || s.Idle != 1 || s.InUse != 0 || s.Dials != 1 {
		t.Fatalf("after release: %+v", s)
	}
	c = acquire(t, p)
	if c.ID() != id {
		t.Fatalf("second Acquire got backend connection %d, want the released %d", c.ID(), id)
	}
	if s := p.Stats(); s.Open != 1 || s.Idle != 0 || s.InUse != 1 || s.Dials != 1 {
		t.Fatalf("after reacquire: %+v", s)
	}
	p.Release(c)
	if n := e.sessions(t, user); n != 1 {
		t.Fatalf("server has %d sessions of %s, want 1", n, user)
	}
}

func testMaxOpenWaiter(t *testing.T, e *env) {
	p, _ := e.newPool(t, func(o *Options) { o.MaxOpen = 1 })
	c1 := acquire(t, p)
	got := make(chan *Conn)
	go func() {
		c, err := p.Acquire(t.Context())
		if err != nil {
			t.Errorf("waiting Acquire: %v", err)
		}
		got <- c
	}()
	eventually(t, 5*time.Second, "a waiter", func() bool { return p.Stats().Waiting == 1 })
	if s := p.Stats(); s.Open != 1 {
		t.Fatalf("MaxOpen 1 but %d open", s.Open)
	}
	id := c1.ID()
	p.Release(c1)
	c2 := <-got
	if c2 == nil {
		t.FailNow()
	}
	if c2.ID() != id {
		t.Fatalf("waiter got connection %d, want the released %d", c2.ID(), id)
	}
	s := p.Stats()
	if s.WaitCount != 1 || s.WaitDuration <= 0 || s.Open != 1 || s.Dials != 1 {
		t.Fatalf("stats: %+v", s)
	}
	p.Release(c2)
}

func testAcquireTimeout(t *testing.T, e *env) {
	const timeout = 200 * time.Millisecond
	p, _ := e.newPool(t, func(o *Options) { o.MaxOpen = 1; o.AcquireTimeout = timeout })
	c := acquire(t, p)
	defer p.Release(c)
	start := time.Now()
	_, err := p.Acquire(t.Context())
	elapsed := time.Since(start)
	if !errors.Is(err, ErrAcquireTimeout) {
		t.Fatalf("Acquire: %v, want ErrAcquireTimeout", err)
	}
	if elapsed < timeout || elapsed > timeout+time.Second {
		t.Fatalf("Acquire timed out after %s, want about %s", elapsed, timeout)
	}
	t.Logf("error: %v", err)
	if s := p.Stats(); s.AcquireTimeouts != 1 || s.Waiting != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func testContextWhileWaiting(t *testing.T, e *env) {
	p, _ := e.newPool(t, func(o *Options) { o.MaxOpen = 1; o.AcquireTimeout = time.Minute })
	c := acquire(t, p)
	defer p.Release(c)

	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Acquire(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrAcquireTimeout) {
		t.Fatalf("Acquire with a deadline: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Acquire returned after %s", d)
	}

	ctx, cancel = context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		_, err := p.Acquire(ctx)
		done <- err
	}()
	eventually(t, 5*time.Second, "a waiter", func() bool { return p.Stats().Waiting == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire cancelled: %v, want context.Canceled", err)
	}
	if s := p.Stats(); s.Waiting != 0 || s.WaitCanceled != 2 || s.Open != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

func testMaxLifetime(t *testing.T, e *env) {
	const lifetime = 300 * time.Millisecond
	p, _ := e.newPool(t, func(o *Options) { o.MaxLifetime = lifetime })
	c := acquire(t, p)
	id, created := c.ID(), c.Created()
	p.Release(c)
	eventually(t, 5*time.Second, "the lifetime to pass", func() bool { return time.Since(created) > lifetime })
	c = acquire(t, p)
	defer p.Release(c)
	if c.ID() == id {
		t.Fatalf("got connection %d again after its lifetime", id)
	}
	if s := p.Stats(); s.ClosedLifetime != 1 || s.Open != 1 {
		t.Fatalf("stats: %+v", s)
	}
	eventually(t, 5*time.Second, "the expired connection to leave the server", func() bool { return !e.alive(t, id) })
}

func testIdleTimeoutMinIdle(t *testing.T, e *env) {
	p, user := e.newPool(t, func(o *Options) {
		o.MinIdle = 2
		o.IdleTimeout = 300 * time.Millisecond
		o.MaxOpen = 10
	})
	// Maintenance warms MinIdle connections without any Acquire.
	eventually(t, 5*time.Second, "MinIdle to be dialled", func() bool {
		s := p.Stats()
		return s.Idle == 2 && s.Open == 2
	})
	if n := e.sessions(t, user); n != 2 {
		t.Fatalf("server has %d sessions, want 2", n)
	}

	var cs []*Conn
	for range 5 {
		cs = append(cs, acquire(t, p))
	}
	for _, c := range cs {
		p.Release(c)
	}
	// Maintenance may have dialled more while all five were in use (MinIdle counts idle
	// connections), so at least five are idle now.
	s := p.Stats()
	if s.Idle < 5 || s.Open != s.Idle {
		t.Fatalf("after releasing 5: %+v", s)
	}
	extra := uint64(s.Open - 2)
	// Idle connections above MinIdle go after IdleTimeout; MinIdle stay.
	eventually(t, 5*time.Second, "idle connections to be closed down to MinIdle", func() bool {
		s := p.Stats()
		return s.Idle == 2 && s.Open == 2 && s.ClosedIdle == extra
	})
	eventually(t, 5*time.Second, "the server to see 2 sessions", func() bool { return e.sessions(t, user) == 2 })

	// Connections lost are replaced to keep MinIdle.
	dials := p.Stats().Dials
	for _, c := range []*Conn{acquire(t, p), acquire(t, p)} {
		c.State().MarkBroken()
		p.Release(c)
	}
	eventually(t, 5*time.Second, "MinIdle to be refilled", func() bool {
		s := p.Stats()
		return s.Idle == 2 && s.Open == 2 && s.Dials == dials+2
	})
	eventually(t, 5*time.Second, "the server to see 2 sessions", func() bool { return e.sessions(t, user) == 2 })
}

func testBrokenDiscarded(t *testing.T, e *env) {
	const pingAfter = 50 * time.Millisecond
	p, _ := e.newPool(t, func(o *Options) { o.PingAfterIdle = pingAfter })
	c := acquire(t, p)
	id := c.ID()
	p.Release(c)
	released := time.Now()
	e.exec(t, "KILL "+itoa(id))
	eventually(t, 5*time.Second, "the killed connection to go", func() bool {
		return !e.alive(t, id) && time.Since(released) > pingAfter
	})
	c = acquire(t, p)
	defer p.Release(c)
	if c.ID() == id {
		t.Fatalf("Acquire handed out the killed connection %d", id)
	}
	exec(t, c, "SELECT 1")
	if s := p.Stats(); s.ClosedBroken != 1 || s.Open != 1 || s.Dials != 2 {
		t.Fatalf("stats: %+v", s)
	}
}

func testCloseWakesWaiters(t *testing.T, e *env) {
	p, user := e.newPool(t, func(o *Options) { o.MaxOpen = 1; o.AcquireTimeout = time.Minute })
	c := acquire(t, p)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := p.Acquire(t.Context())
			errs <- err
		}()
	}
	eventually(t, 5*time.Second, "two waiters", func() bool { return p.Stats().Waiting == 2 })
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("waiter got %v, want ErrClosed", err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := p.Acquire(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Acquire after Close: %v", err)
	}
	// The connection in use is closed when released.
	p.Release(c)
	if s := p.Stats(); s.Open != 0 || s.ClosedPool != 1 {
		t.Fatalf("stats: %+v", s)
	}
	eventually(t, 5*time.Second, "the server to see no session", func() bool { return e.sessions(t, user) == 0 })
}

func testWrongPassword(t *testing.T, e *env) {
	p, _ := e.newPool(t, func(o *Options) { o.Password = "wrong" })
	_, err := p.Acquire(t.Context())
	se, ok := sqlerr.As(err)
	if !ok {
		t.Fatalf("Acquire: %v (%T), want a *sqlerr.Error", err, err)
	}
	if se.Code != sqlerr.ErAccessDenied || se.State != "28000" {
		t.Fatalf("got %d (%s), want 1045 (28000): %v", se.Code, se.State, err)
	}
	t.Logf("error: %v", err)
	if s := p.Stats(); s.Open != 0 || s.DialErrors != 1 || s.Dialing != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func testUnreachable(t *testing.T, _ *env) {
	p, err := New(Options{Addr: "127.0.0.1:1", User: "u", DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Acquire(t.Context())
	if err == nil || !contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Acquire: %v, want an error naming the address", err)
	}
	if s := p.Stats(); s.Open != 0 || s.DialErrors != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

func testMaxIdle(t *testing.T, e *env) {
	p, user := e.newPool(t, func(o *Options) { o.MaxOpen = 4; o.MaxIdle = 1 })
	a, b := acquire(t, p), acquire(t, p)
	p.Release(a)
	p.Release(b)
	if s := p.Stats(); s.Open != 1 || s.Idle != 1 || s.ClosedExcess != 1 {
		t.Fatalf("stats: %+v", s)
	}
	eventually(t, 5*time.Second, "the server to see 1 session", func() bool { return e.sessions(t, user) == 1 })
}

// testConcurrent hammers a small pool from more goroutines than MaxOpen, breaking some
// connections so that freed slots go to waiters, and checks the limit holds throughout.
func testConcurrent(t *testing.T, e *env) {
	const maxOpen, workers, rounds = 3, 8, 60
	p, user := e.newPool(t, func(o *Options) { o.MaxOpen = maxOpen; o.AcquireTimeout = 30 * time.Second })
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				c, err := p.Acquire(t.Context())
				if err != nil {
					t.Errorf("worker %d: Acquire: %v", w, err)
					return
				}
				if s := p.Stats(); s.Open > maxOpen {
					t.Errorf("%d open, MaxOpen %d", s.Open, maxOpen)
				}
				if _, err := c.Exec(t.Context(), "SELECT 1"); err != nil {
					t.Errorf("worker %d: Exec: %v", w, err)
				}
				if (w+i)%10 == 0 {
					c.State().MarkBroken()
				}
				p.Release(c)
			}
		})
	}
	wg.Wait()
	s := p.Stats()
	if s.Open > maxOpen || s.Open != s.Idle || s.Waiting != 0 || s.Dialing != 0 {
		t.Fatalf("stats after the run: %+v", s)
	}
	if s.ClosedBroken != workers*rounds/10 || s.Dials != s.ClosedBroken+uint64(s.Open) {
		t.Fatalf("stats after the run: %+v", s)
	}
	t.Logf("stats: %+v", s)
	eventually(t, 5*time.Second, "the server to agree on the count", func() bool { return e.sessions(t, user) == s.Open })
}
