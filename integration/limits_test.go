package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// testLimits checks the proxy's bounds: client connections, idle clients, an exhausted
// pool, an unreachable backend, and a client that goes away during a long statement.
func testLimits(t *testing.T, e *env) {
	m := dbMap{Logical: "lim", Physical: "lim_phys"}

	t.Run("MaxConnections", func(t *testing.T) {
		cfg := e.config(t, m)
		cfg.Server["max_connections"] = 3
		p := startProxy(t, cfg)
		var held []*rawConn
		for range 3 {
			held = append(held, connectRaw(t, p.Addr, appUser, appPass, m.Logical))
		}
		c := dialRaw(t, p.Addr)
		err := c.readGreeting()
		var se *serverError
		if !errors.As(err, &se) || se.Code != 1040 || se.State != "08004" {
			t.Errorf("the 4th connection: %v, want error 1040 (08004) instead of the greeting", err)
		}
		_ = held[0].nc.Close()
		eventually(t, 10*time.Second, "a connection slot freed by a close", func() error {
			c := dialRaw(t, p.Addr)
			defer c.nc.Close()
			if err := c.readGreeting(); err != nil {
				return err
			}
			return c.login(appUser, appPass, m.Logical, 0)
		})
	})

	t.Run("IdleTimeout", func(t *testing.T) {
		cfg := e.config(t, m)
		cfg.Server["idle_timeout"] = "1s"
		p := startProxy(t, cfg)
		c := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
		if err := c.ping(); err != nil {
			t.Fatal(err)
		}
		if err := c.closed(15 * time.Second); err != nil {
			t.Errorf("idle connection: %v", err)
		}
		// A busy connection is not idle: a statement longer than idle_timeout completes.
		db := p.open(t, appUser, appPass, m.Logical)
		if v := queryString(t, db, "SELECT SLEEP(1.5) + 7"); v != "7" {
			t.Errorf("a statement longer than idle_timeout: %s", v)
		}
	})

	t.Run("PoolExhausted", func(t *testing.T) {
		cfg := e.config(t, m)
		cfg.Backends[0].Pool = poolConfig{MaxOpen: 1, MaxIdle: 1, AcquireTimeout: "1s"}
		p := startProxy(t, cfg)
		db := p.open(t, appUser, appPass, m.Logical)
		holder, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, holder, "BEGIN", "SELECT 1") // pins the only backend connection
		other, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		start := time.Now()
		_, err = other.ExecContext(context.Background(), "SELECT 2")
		wantError(t, err, 1040, "08004")
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("the statement waited %v for a connection, acquire_timeout is 1s", d)
		}
		mustExec(t, holder, "COMMIT")
		_ = holder.Close()
		if v := queryString(t, other, "SELECT 3"); v != "3" {
			t.Errorf("after the connection was released: %s", v)
		}
	})

	t.Run("BackendUnreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		_ = ln.Close() // nothing listens there now
		cfg := e.config(t, m)
		cfg.Backends[0].Addr = dead
		p := startProxy(t, cfg)
		db := p.open(t, appUser, appPass, m.Logical)
		_, err = db.Exec("SELECT 1")
		wantError(t, err, 1429, "HY000")  // ER_CONNECT_TO_FOREIGN_DATA_SOURCE: a server code (2003 made libmariadb report 2027)
		if err := db.Ping(); err != nil { // COM_PING is the proxy's own
			t.Errorf("ping: %v", err)
		}
	})

	t.Run("ClientGoneStopsBackendQuery", func(t *testing.T) {
		cfg := e.config(t, m)
		e.backendUser(t, cfg, "px_lim")
		p := startProxy(t, cfg)
		db := p.open(t, appUser, appPass, m.Logical)
		for _, q := range []struct {
			name string
			sql  string
			args []any
		}{{"Text", "SELECT SLEEP(60), 'text'", nil}, {"Prepared", "SELECT SLEEP(60), ?", []any{"prepared"}}} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := db.QueryContext(ctx, q.sql, q.args...)
			cancel()
			if err == nil {
				t.Fatalf("%s: SLEEP(60) returned within a 1s deadline", q.name)
			}
			// go-sql-driver closes its connection when the context ends; the proxy must stop
			// the statement on MariaDB rather than let it run for a minute.
			eventually(t, 15*time.Second, q.name+": SLEEP(60) stopped on MariaDB", func() error {
				var n int
				err := e.root.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'px_lim' AND INFO LIKE 'SELECT SLEEP(60)%'").Scan(&n)
				if err == nil && n > 0 {
					err = fmt.Errorf("%d still running", n)
				}
				return err
			})
		}
		if v := queryString(t, db, "SELECT 'after'"); v != "after" {
			t.Errorf("a statement after the abandoned ones: %q", v)
		}
	})

	t.Run("BackendConnectionKilled", func(t *testing.T) {
		cfg := e.config(t, m)
		e.backendUser(t, cfg, "px_kill")
		cfg.Backends[0].Pool = poolConfig{MaxOpen: 2, MaxIdle: 2}
		p := startProxy(t, cfg)
		direct := e.direct(t, m.Physical)
		mustExec(t, direct, "CREATE TABLE IF NOT EXISTS k (id INT PRIMARY KEY)")
		killBackends := func() {
			t.Helper()
			rows, err := e.root.Query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'px_kill'")
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			_ = rows.Close()
			if len(ids) == 0 {
				t.Fatal("no backend connection to kill")
			}
			for _, id := range ids {
				e.rootExec(t, fmt.Sprintf("KILL %d", id))
			}
		}
		conn, err := p.open(t, appUser, appPass, m.Logical).Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()

		// Outside a transaction: the session goes on.
		mustExec(t, conn, "SELECT 1")
		killBackends()
		_, errNext := conn.ExecContext(context.Background(), "SELECT 2")
		t.Run("NextStatement", func(t *testing.T) {
			// Regression: nothing was executed (the connection was gone before the command)
			// and the session holds no state on it: the statement runs on a fresh connection.
			if errNext != nil {
				t.Errorf("the first statement after the kill: %v", errNext)
			}
		})
		if v := queryString(t, conn, "SELECT 3"); v != "3" {
			t.Errorf("the session after its idle backend connection was killed: %s", v)
		}

		// Inside a transaction: the transaction is lost and must not go on, half, elsewhere.
		tx, err := p.open(t, appUser, appPass, m.Logical).Begin()
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, tx, "INSERT INTO k VALUES (1)")
		killBackends()
		_, err2 := tx.Exec("INSERT INTO k VALUES (2)")
		errCommit := tx.Commit()
		if err2 == nil && errCommit == nil {
			t.Errorf("the transaction went on after its backend connection was killed")
		}
		if n := queryString(t, direct, "SELECT COUNT(*) FROM k"); n != "0" {
			t.Errorf("%s rows of the killed transaction were committed", n)
		}
	})
}
