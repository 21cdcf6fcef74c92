package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testGracefulShutdown sends SIGTERM while a statement runs: the statement completes and
// returns its row, idle connections are closed (an idle transaction rolled back), new
// connections are refused, and the process exits 0.
func testGracefulShutdown(t *testing.T, e *env) {
	m := dbMap{Logical: "shut", Physical: "shut_phys"}
	cfg := e.config(t, m)
	e.backendUser(t, cfg, "px_shut")
	p := startProxy(t, cfg)
	direct := e.direct(t, m.Physical)
	mustExec(t, direct, "CREATE TABLE s (id INT PRIMARY KEY)")

	busy := p.open(t, appUser, appPass, m.Logical)
	type answer struct {
		slept, word string
		err         error
	}
	done := make(chan answer, 1)
	go func() {
		var a answer
		a.err = busy.QueryRowContext(context.Background(), "SELECT SLEEP(2), 'done'").Scan(&a.slept, &a.word)
		done <- a
	}()
	idle := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
	inTxn := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
	for _, q := range []string{"BEGIN", "INSERT INTO s VALUES (1)"} {
		if _, err := inTxn.query(q); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 15*time.Second, "SLEEP(2) running on MariaDB", func() error {
		var n int
		err := e.root.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'px_shut' AND INFO LIKE 'SELECT SLEEP(2)%'").Scan(&n)
		if err == nil && n == 0 {
			err = errors.New("not yet")
		}
		return err
	})

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "new connections refused", func() error {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err != nil {
			return nil
		}
		_ = c.Close()
		return fmt.Errorf("%s still accepts connections", p.Addr)
	})
	for _, c := range []struct {
		name string
		rc   *rawConn
	}{{"idle", idle}, {"idle in a transaction", inTxn}} {
		if err := c.rc.closed(10 * time.Second); err != nil {
			t.Errorf("%s connection: %v", c.name, err)
		}
	}
	select {
	case a := <-done:
		if a.err != nil || a.slept != "0" || a.word != "done" {
			t.Errorf("the statement running at SIGTERM: (%s, %s, %v), want (0, done, nil)", a.slept, a.word, a.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the statement running at SIGTERM never returned")
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("shardproxy exited with %v, want status 0", p.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("shardproxy did not exit within 30s of SIGTERM")
	}
	if n := queryString(t, direct, "SELECT COUNT(*) FROM s"); n != "0" {
		t.Errorf("the idle transaction's row was committed")
	}
	logs := p.log.String()
	for _, want := range []string{"shutting down", "msg=stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	// The pools were closed: no backend connection of the proxy is left on MariaDB.
	eventually(t, 15*time.Second, "backend connections closed", func() error {
		var n int
		err := e.root.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'px_shut'").Scan(&n)
		if err == nil && n > 0 {
			err = fmt.Errorf("%d still open", n)
		}
		return err
	})
}
