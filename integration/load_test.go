package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// testConcurrentLoad runs many more client sessions than the pool has backend connections,
// each mixing transactions, prepared and text statements and session variables; every
// committed increment must be there at the end, and nothing else.
func testConcurrentLoad(t *testing.T, e *env) {
	m := dbMap{Logical: "load", Physical: "load_phys"}
	cfg := e.config(t, m)
	cfg.Backends[0].Pool = poolConfig{MaxOpen: 8, MaxIdle: 8, AcquireTimeout: "60s"}
	p := startProxy(t, cfg)
	direct := e.direct(t, m.Physical)
	mustExec(t, direct, "CREATE TABLE counter (id INT PRIMARY KEY, n INT NOT NULL)",
		"INSERT INTO counter VALUES (0, 0), (1, 0), (2, 0), (3, 0)",
		"CREATE TABLE events (id BIGINT AUTO_INCREMENT PRIMARY KEY, worker INT, counter INT)")

	const workers, rounds = 48, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		db := p.open(t, appUser, appPass, m.Logical, driverModes[w%2].params...)
		wg.Go(func() { errs <- loadWorker(db, w, rounds) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := queryString(t, direct, "SELECT SUM(n) FROM counter"); got != fmt.Sprint(workers*rounds) {
		t.Errorf("SUM(n) = %s, want %d", got, workers*rounds)
	}
	if got := queryString(t, direct, "SELECT COUNT(*) FROM events"); got != fmt.Sprint(workers*rounds) {
		t.Errorf("%s events, want %d", got, workers*rounds)
	}
	if got := queryString(t, direct, "SELECT COUNT(*) FROM events e JOIN counter c ON c.id = e.counter"); got != fmt.Sprint(workers*rounds) {
		t.Errorf("events join counters: %s", got)
	}
}

func loadWorker(db *sql.DB, w, rounds int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tz := fmt.Sprintf("+%02d:00", w%12)
	if _, err := conn.ExecContext(ctx, "SET time_zone = '"+tz+"'"); err != nil {
		return fmt.Errorf("worker %d: %w", w, err)
	}
	for r := 0; r < rounds; {
		k := (w + r) % 4
		err := func() error {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			if _, err := tx.ExecContext(ctx, "UPDATE counter SET n = n + 1 WHERE id = ?", k); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO events (worker, counter) VALUES (?, ?)", w, k); err != nil {
				return err
			}
			var id, last int64
			if err := tx.QueryRowContext(ctx, "SELECT MAX(id), LAST_INSERT_ID() FROM events WHERE worker = ?", w).Scan(&id, &last); err != nil {
				return err
			}
			if id != last {
				return fmt.Errorf("LAST_INSERT_ID() %d, but the worker's last event is %d", last, id)
			}
			return tx.Commit()
		}()
		var me *mysql.MySQLError
		if errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205) {
			continue // deadlock or lock wait: InnoDB's doing, retry
		}
		if err != nil {
			return fmt.Errorf("worker %d round %d: %w", w, r, err)
		}
		var got string
		if err := conn.QueryRowContext(ctx, "SELECT @@time_zone").Scan(&got); err != nil {
			return fmt.Errorf("worker %d: %w", w, err)
		}
		if got != tz {
			return fmt.Errorf("worker %d round %d: time_zone %s, want %s", w, r, got, tz)
		}
		r++
	}
	return nil
}
