package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestDeadlineAtMaxConnections: a backend whose max_connections is reached (the one extra
// connection MariaDB keeps for SUPER included) still gets its timed-out statement killed: a
// 300 ms MAX_EXECUTION_TIME answers 3024 in about 300 ms and nothing is left running,
// because the proxy keeps a connection per backend in reserve for KILL QUERY. A MariaDB of
// its own: max_connections is global.
func TestDeadlineAtMaxConnections(t *testing.T) {
	e := newEnv(t)
	m := dbMap{Logical: "maxconn", Physical: "maxconn"}
	cfg := e.config(t, m)
	e.backendUser(t, cfg, "px_maxconn")
	p := startProxy(t, cfg)
	conn := dedicatedConn(t, p.open(t, appUser, appPass, m.Logical))
	if v := queryString(t, conn, "SELECT 'warm'"); v != "warm" {
		t.Fatalf("warm-up: %q", v)
	}
	// The pool's connection and the reserve for KILL QUERY.
	eventually(t, 10*time.Second, "the proxy's two backend connections", func() error {
		n := queryString(t, e.root, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'px_maxconn'")
		if n != "2" {
			return fmt.Errorf("%s connections", n)
		}
		return nil
	})
	e.rootExec(t, "SET GLOBAL max_connections = 10")
	t.Cleanup(func() { e.rootExec(t, "SET GLOBAL max_connections = 151") })
	filler := openDB(t, fmt.Sprintf("%s:%s@tcp(%s)/", e.srv.User, e.srv.Password, e.srv.Addr()))
	var held []*sql.Conn
	t.Cleanup(func() {
		for _, c := range held {
			_ = c.Close()
		}
	})
	for {
		c, err := filler.Conn(t.Context())
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1040 {
			break
		}
		if err != nil || len(held) > 20 {
			t.Fatalf("filling MariaDB after %d connections: %v", len(held), err)
		}
		held = append(held, c)
	}
	start := time.Now()
	_, err := conn.ExecContext(context.Background(), "SELECT /*+ MAX_EXECUTION_TIME(300) */ SLEEP(5)")
	took := time.Since(start)
	wantError(t, err, 3024, "HY000")
	if took > time.Second {
		t.Errorf("3024 after %v for a 300ms budget at max_connections", took)
	}
	t.Logf("at max_connections: 3024 after %v", took.Round(time.Millisecond))
	wantNothingRunning(t, e, "px_maxconn", "%SLEEP(%", time.Second)
	if v := queryString(t, conn, "SELECT 'after'"); v != "after" {
		t.Errorf("after the timeout: %q", v)
	}
}
