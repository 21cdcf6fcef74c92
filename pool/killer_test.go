package pool

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestKillReserveAtMaxConnections: on a backend whose max_connections is reached (also the
// one extra connection MariaDB keeps for SUPER), a KILL QUERY over a fresh connection fails
// with 1040, while a pool with KillReserve still kills the statement at once over its
// reserve connection. A server of its own: max_connections is global.
func TestKillReserveAtMaxConnections(t *testing.T) {
	srv := mariadbtest.Start(t)
	root := srv.DB(t, "")
	newPool := func(reserve bool) *Pool {
		p, err := New(Options{Addr: srv.Addr(), User: srv.User, Password: srv.Password, KillReserve: reserve,
			Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	withReserve, without := newPool(true), newPool(false)
	victim, victim2, other := acquire(t, withReserve), acquire(t, withReserve), acquire(t, without)
	defer withReserve.Release(victim)
	defer withReserve.Release(victim2)
	defer without.Release(other)
	eventually(t, 10*time.Second, "the reserve connection", withReserve.reserve.ready)

	// Fill the server: a low max_connections, then root connections until one is refused.
	keep, err := root.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	if _, err := keep.ExecContext(t.Context(), "SET GLOBAL max_connections = 10"); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = keep.ExecContext(context.Background(), "SET GLOBAL max_connections = 151") }()
	filler, err := sql.Open("mysql", srv.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	for i := 0; ; i++ {
		c, err := filler.Conn(t.Context())
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1040 {
			break
		}
		if err != nil || i > 20 {
			t.Fatalf("filling the server (%d connections): %v", i, err)
		}
		defer c.Close()
	}

	// The dialing kill cannot get in.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	err = without.KillQuery(ctx, other.ID())
	cancel()
	if se, ok := sqlerr.As(err); !ok || se.Code != 1040 { // sent before the handshake: no SQLSTATE
		t.Fatalf("KillQuery over a fresh connection at max_connections: %v, want 1040", err)
	}

	// Two statements killed at once (a scatter statement's shards on one backend) share
	// the reserve: the second kill waits for it, since a dial cannot get in.
	victims := []*Conn{victim, victim2}
	done := make(chan time.Duration, len(victims))
	for _, v := range victims {
		go func() {
			start := time.Now()
			_, _ = v.Exec(context.Background(), "SELECT SLEEP(20)")
			done <- time.Since(start)
		}()
	}
	eventually(t, 5*time.Second, "the SLEEPs to run", func() bool {
		var n int
		err := keep.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM information_schema.PROCESSLIST "+
			"WHERE ID IN (?, ?) AND INFO LIKE 'SELECT SLEEP%'", victim.ID(), victim2.ID()).Scan(&n)
		return err == nil && n == 2
	})
	errs := make(chan error, len(victims))
	start := time.Now()
	for _, v := range victims {
		go func() {
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			errs <- withReserve.KillQuery(ctx, v.ID())
		}()
	}
	for range victims {
		if err := <-errs; err != nil {
			t.Fatalf("KillQuery over the reserve at max_connections: %v", err)
		}
	}
	took := time.Since(start)
	for range victims {
		select {
		case d := <-done:
			t.Logf("two KILL QUERY over the reserve took %v; a killed SLEEP returned after %v", took, d.Round(time.Millisecond))
		case <-time.After(5 * time.Second):
			t.Fatal("a killed query did not return")
		}
	}
	// The reserve is kept for the next kill.
	if !withReserve.reserve.ready() {
		t.Error("the reserve connection was not kept after the kill")
	}
}

// TestKillReserveGiveNeverBlocks replays, step by step, an interleaving that leaves two
// reserve connections: a KillQuery takes the idle reserve (take's receive) and, before it
// counts itself as holder, the keeper finds the reserve missing and fills the slot with a
// new connection. From then on any give into the full slot (the KillQuery's, or later the
// keeper's own after its periodic ping, while another kill holds the second connection)
// blocked forever with the reserve's mutex held, and Close waited forever for the keeper:
// a proxy that did not exit on SIGTERM. Giving back must not block; the extra connection
// is closed instead, and Close returns.
func TestKillReserveGiveNeverBlocks(t *testing.T) {
	srv := mariadbtest.Start(t)
	p, err := New(Options{Addr: srv.Addr(), User: srv.User, Password: srv.Password, KillReserve: true,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	k := p.reserve
	// No Acquire: the keeper is never kicked, the test drives every step.
	if !p.dialReserve(t.Context()) || !k.ready() {
		t.Fatal("the first reserve connection was not dialed")
	}
	first := <-k.slot // take's receive; its held.Add(1) has not run yet
	if !k.missing() {
		t.Fatal("the reserve does not look missing in take's window")
	}
	if !p.dialReserve(t.Context()) || !k.ready() {
		t.Fatal("the keeper's dial did not fill the slot")
	}
	k.held.Add(1) // take completes
	gave := make(chan struct{})
	go func() {
		p.giveReserve(first)
		close(gave)
	}()
	select {
	case <-gave:
	case <-time.After(10 * time.Second):
		<-k.slot // unblock the give so that Close can end
		<-gave
		_ = p.Close()
		t.Fatal("giveReserve blocked on a full reserve slot (with the reserve's mutex held)")
	}
	if !first.st.Broken() {
		t.Error("the reserve connection given back to a full slot was not closed")
	}
	if k.held.Load() != 0 || !k.ready() {
		t.Errorf("after the give: %d holders, ready %v; want 0 holders and the keeper's connection idle", k.held.Load(), k.ready())
	}
	closed := make(chan struct{})
	go func() {
		_ = p.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s")
	}
}

// TestKillReserveRedialedAfterWaiter: a KillQuery waiting for the reserve counts as a
// holder, so the keeper, kicked when the current holder gives back a broken reserve, sees
// it as busy and does not dial; when the waiter gives up it kicks the keeper, which dials a
// new reserve at once (not at its next periodic check, 30s later).
func TestKillReserveRedialedAfterWaiter(t *testing.T) {
	srv := mariadbtest.Start(t)
	p, err := New(Options{Addr: srv.Addr(), User: srv.User, Password: srv.Password, KillReserve: true,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	k := p.reserve
	k.kick()
	eventually(t, 10*time.Second, "the reserve connection", k.ready)
	c := k.take(t.Context(), 0)
	if c == nil {
		t.Fatal("the idle reserve was not taken")
	}
	waited := make(chan *Conn)
	go func() { waited <- k.take(t.Context(), 300*time.Millisecond) }()
	eventually(t, 10*time.Second, "the waiter counted as a holder", func() bool { return k.held.Load() == 2 })
	c.st.MarkBroken() // a kill broke it
	p.giveReserve(c)
	if got := <-waited; got != nil {
		t.Fatal("the waiter got a reserve connection that was closed")
	}
	eventually(t, 10*time.Second, "a new reserve connection after the waiter gave up", k.ready)
}
