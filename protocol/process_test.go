package protocol

import (
	"context"
	"testing"
	"time"
)

// TestProcessesAndKill: the server lists its authenticated connections by id, KillQuery
// interrupts a command (1317) and leaves the connection usable, KillConnection closes it.
func TestProcessesAndKill(t *testing.T) {
	ts := startServer(t, Options{})
	victimDB := openDB(t, ts.addr, nativeUser, password, nil)
	victim, err := victimDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	if err := victim.PingContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	id := ts.h.session(t, 0).info.ID

	errc := make(chan error, 1)
	go func() {
		_, err := victim.ExecContext(context.Background(), "block")
		errc <- err
	}()
	<-ts.h.started
	ps := ts.Processes()
	if len(ps) != 1 || ps[0].ID != id || ps[0].User != nativeUser || ps[0].Command != "Query" || ps[0].State != "executing" || ps[0].Host == "" {
		t.Fatalf("Processes() during a command = %+v", ps)
	}
	if ts.KillQuery(id + 100) {
		t.Error("KillQuery of an unknown id reported success")
	}
	if !ts.KillQuery(id) {
		t.Fatal("KillQuery of the running connection failed")
	}
	select {
	case err := <-errc:
		mysqlErr(t, err, 1317, "70100")
	case <-time.After(10 * time.Second):
		t.Fatal("the command was not interrupted by KillQuery")
	}
	if _, err := victim.ExecContext(context.Background(), "ok"); err != nil {
		t.Fatalf("the connection after KillQuery: %v", err)
	}
	// The answer reaches the client just before the connection goes back to waiting.
	waitUntil(t, "the connection listed as idle", func() bool {
		ps := ts.Processes()
		return len(ps) == 1 && ps[0].Command == "Sleep" && ps[0].State == ""
	})

	if !ts.KillConnection(id) {
		t.Fatal("KillConnection failed")
	}
	if _, err := victim.ExecContext(context.Background(), "ok"); err == nil {
		t.Error("the connection still answers after KillConnection")
	}
	waitUntil(t, "the killed connection gone from the list", func() bool { return len(ts.Processes()) == 0 })
	if ts.KillConnection(id) {
		t.Error("KillConnection of a closed connection reported success")
	}
}

// waitUntil polls cond until it holds, failing the test after 10 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
