package pool

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// testKilledIdleGetsNoERR pins what MariaDB 10.11 does to a connection KILLed while it
// waits for a command: it closes the connection without a packet (no ERR 1927 announcing
// the kill), so the proxy's only way to know before sending a command is to look at the
// socket (closedByServer).
func testKilledIdleGetsNoERR(t *testing.T, e *env) {
	p, _ := e.newPool(t, nil)
	c := acquire(t, p)
	defer p.Release(c)
	c.State().MarkBroken()
	id := c.ID()
	e.exec(t, "KILL "+itoa(id))
	eventually(t, 5*time.Second, "the killed connection to go", func() bool { return !e.alive(t, id) })
	if !c.closedByServer() {
		t.Errorf("closedByServer = false for the killed connection")
	}
	c.Wire().ResetSeq()
	if pkt, err := c.Wire().ReadPacket(); !errors.Is(err, io.EOF) {
		t.Fatalf("killed idle connection: read %q, %v; want EOF (no packet)", pkt, err)
	}
}

// testKillRacingCommand races KILL <id> from another session with an INSERT on connection
// id, many times, and checks which INSERTs ran. It pins why a write whose connection closed
// before answering must stay "outcome unknown" on MariaDB 10.11: an INSERT can commit and
// its connection close without an answer (counted and logged as "ran, no answer"); only a
// reply says what happened. Every INSERT answered OK must have run.
func testKillRacingCommand(t *testing.T, e *env) {
	p, user := e.newPool(t, nil)
	tbl := "db1.kill_race_" + user
	e.exec(t, "CREATE TABLE "+tbl+" (i INT PRIMARY KEY)")
	const rounds = 300
	rng := rand.New(rand.NewPCG(1, 2))
	answer := make([]string, rounds)
	for i := range rounds {
		c := acquire(t, p)
		id := c.ID()
		var kill sync.WaitGroup
		kill.Go(func() { _, _ = e.root.ExecContext(t.Context(), "KILL "+itoa(id)) })
		spin(time.Duration(rng.IntN(1500)) * time.Microsecond)
		w := c.Wire()
		w.ResetSeq()
		err := w.WritePacket(append([]byte{0x03}, fmt.Sprintf("INSERT INTO %s VALUES (%d)", tbl, i)...))
		if err == nil {
			err = w.Flush()
		}
		var pkt []byte
		if err == nil {
			pkt, err = w.ReadPacket()
		}
		var se *sqlerr.Error
		switch {
		case err == nil && wire.IsErr(pkt) && errors.As(wire.ParseErr(pkt), &se):
			answer[i] = fmt.Sprintf("ERR %d", se.Code)
		case err == nil && pkt[0] == wire.OKHeader:
			answer[i] = "OK"
		case err == nil:
			answer[i] = fmt.Sprintf("packet 0x%02x", pkt[0])
		default:
			answer[i] = "no answer (" + err.Error() + ")"
		}
		kill.Wait()
		c.State().MarkBroken()
		p.Release(c)
	}
	ran := map[int]bool{}
	rows, err := e.root.QueryContext(t.Context(), "SELECT i FROM "+tbl)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		if err := rows.Scan(&i); err != nil {
			t.Fatal(err)
		}
		ran[i] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for i, a := range answer {
		if a == "OK" && !ran[i] {
			t.Errorf("INSERT %d was answered OK but did not run", i)
		}
		if ran[i] {
			a = "ran, " + a
		} else {
			a = "did not run, " + a
		}
		counts[a]++
	}
	t.Logf("%d INSERTs raced with KILL: %v", rounds, counts)
}

// spin waits d without sleeping (a timer is too coarse to place the command around the kill).
func spin(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
	}
}

// testKilledNeverHandedOut: a connection the server killed is never handed out, however
// briefly it sat idle, on every path: handed by Release straight to a waiting Acquire,
// preferred by AcquirePreferring, matched by database by AcquireMatching, or popped from the
// idle stack. (Before, only connections idle longer than 10 ms were checked, so a busy pool
// handed out killed connections.)
func testKilledNeverHandedOut(t *testing.T, e *env) {
	p, _ := e.newPool(t, func(o *Options) { o.MaxOpen = 1 })
	// killed kills c on the server and waits until the socket shows it (the close crossed
	// Docker's port forwarding).
	killed := func(c *Conn) {
		t.Helper()
		e.exec(t, "KILL "+itoa(c.ID()))
		eventually(t, 5*time.Second, "the server's close to reach the pool's socket", func() bool {
			return !e.alive(t, c.ID()) && c.closedByServer()
		})
	}
	check := func(path string, got *Conn, err error, dead uint32) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer p.Release(got)
		if got.ID() == dead {
			got.State().MarkBroken()
			t.Fatalf("%s handed out the killed connection %d", path, dead)
		}
		exec(t, got, "SELECT 1")
	}

	// Hand-off: the holder releases a killed connection while another Acquire waits.
	c := acquire(t, p)
	type result struct {
		c   *Conn
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := p.Acquire(t.Context())
		got <- result{c, err}
	}()
	eventually(t, 5*time.Second, "an Acquire to wait", func() bool { return p.Stats().Waiting == 1 })
	killed(c)
	p.Release(c)
	r := <-got
	check("a hand-off to a waiting Acquire", r.c, r.err, c.ID())

	for _, path := range []struct {
		name    string
		acquire func(prefer *Conn) (*Conn, error)
	}{
		{"AcquirePreferring", func(prefer *Conn) (*Conn, error) { return p.AcquirePreferring(t.Context(), prefer) }},
		{"AcquireMatching", func(*Conn) (*Conn, error) { return p.AcquireMatching(t.Context(), nil, "db1") }},
		{"Acquire", func(*Conn) (*Conn, error) { return p.Acquire(t.Context()) }},
	} {
		c := acquire(t, p)
		exec(t, c, "USE db1")
		c.State().SetDB("db1")
		p.Release(c)
		killed(c)
		got, err := path.acquire(c)
		check(path.name, got, err, c.ID())
	}
	if s := p.Stats(); s.ClosedByServer != 4 {
		t.Errorf("ClosedByServer = %d, want 4", s.ClosedByServer)
	}
}
