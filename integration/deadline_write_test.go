package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
)

// TestWriteOutcomeAtDeadline: a write whose proxy deadline (300 ms) passes while MariaDB
// runs it is reported as what happened on the server, never as a guess. The proxy kills it
// and waits up to a second for its answer:
//
//   - killed before it committed (SLEEP in its WHERE): 3024, and the row is unchanged;
//   - committed, its OK held back by a semi-sync wait the kill ends: that late OK reaches the
//     client (3024 would make an order look unpaid that is paid, and a retry pay twice);
//   - committed after the proxy gave up waiting (a binlog group commit wait of 4 s, which
//     KILL does not interrupt): the outcome was unknown when the proxy answered, so the
//     client connection is closed (the driver reports a lost connection), and the row does
//     commit, which a 3024 would have denied.
//
// The server has its own container: the binlog settings these cases change are global.
func TestWriteOutcomeAtDeadline(t *testing.T) {
	srv := mariadbtest.Start(t, mariadbtest.WithDatabases("shop"),
		mariadbtest.WithServerArgs("--log-bin=mysql-bin", "--server-id=1", "--binlog-format=ROW"))
	shard := srv.DB(t, "shop")
	mustExec(t, shard, "CREATE TABLE orders (id INT PRIMARY KEY, paid INT NOT NULL DEFAULT 0) ENGINE=InnoDB")
	cfg := &proxyConfig{
		Listen: "127.0.0.1:0",
		Users:  []userConfig{{Name: appUser, PasswordHash: hashPassword(t, "native", appPass)}},
		Backends: []backendConfig{{Name: "b0", Addr: srv.Addr(), User: srv.User, Password: srv.Password,
			Pool: poolConfig{MaxOpen: 10, MaxIdle: 10}}},
		Shards:    []shardConfig{{Name: "s0", Primary: "b0", Database: "shop"}},
		Databases: []databaseConfig{{Name: "shop", DefaultShard: "s0"}},
	}
	p := startProxy(t, cfg)
	const (
		answerOK   = "OK"
		answer3024 = "3024"
		answerLost = "connection lost"
	)
	for i, tc := range []struct {
		name      string
		global    []string // set on the shard for the case, then reset
		query     string   // %d: the order's id
		args      []any    // bound parameters (a server-side prepared statement)
		answer    string
		committed bool
	}{
		{"KilledBeforeCommit", nil, "UPDATE orders SET paid = paid + 1 WHERE id = %d AND SLEEP(5) = 0", nil, answer3024, false},
		{"KilledBeforeCommitPrepared", nil, "UPDATE orders SET paid = paid + ? WHERE id = %d AND SLEEP(5) = 0", []any{1}, answer3024, false},
		{"CommittedLateOK", []string{"rpl_semi_sync_master_enabled = ON", "rpl_semi_sync_master_timeout = 10000"},
			"UPDATE orders SET paid = paid + 1 WHERE id = %d", nil, answerOK, true},
		{"CommittedLateOKPrepared", []string{"rpl_semi_sync_master_enabled = ON", "rpl_semi_sync_master_timeout = 10000"},
			"UPDATE orders SET paid = paid + ? WHERE id = %d", []any{1}, answerOK, true},
		{"CommittedAfterTheProxyGaveUp", []string{"binlog_commit_wait_count = 100", "binlog_commit_wait_usec = 4000000"},
			"UPDATE orders SET paid = paid + 1 WHERE id = %d", nil, answerLost, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := i + 1
			mustExec(t, shard, fmt.Sprintf("INSERT INTO orders (id) VALUES (%d)", id))
			for _, g := range tc.global {
				mustExec(t, shard, "SET GLOBAL "+g)
			}
			t.Cleanup(func() {
				mustExec(t, shard, "SET GLOBAL rpl_semi_sync_master_enabled = OFF", "SET GLOBAL binlog_commit_wait_count = 0",
					"SET GLOBAL binlog_commit_wait_usec = 100000")
			})
			conn := dedicatedConn(t, p.open(t, appUser, appPass, "shop"))
			mustExec(t, conn, "SET SESSION max_execution_time = 300")
			start := time.Now()
			_, err := conn.ExecContext(context.Background(), fmt.Sprintf(tc.query, id), tc.args...)
			took := time.Since(start)
			got := answerOK
			switch {
			case err == nil:
			case isConnLost(err):
				got = answerLost
			default:
				var me *mysql.MySQLError
				if !errors.As(err, &me) {
					t.Fatalf("after %v: %v", took, err)
				}
				got = fmt.Sprint(me.Number)
			}
			if got != tc.answer {
				t.Errorf("the client got %s (%v) after %v, want %s", got, err, took.Round(time.Millisecond), tc.answer)
			}
			// What the shard holds once every commit settled (the group commit's wait ends
			// within 4 s of the statement).
			want := "0"
			if tc.committed {
				want = "1"
			}
			eventually(t, 15*time.Second, "the order's row settles", func() error {
				if v := queryString(t, shard, fmt.Sprintf("SELECT paid FROM orders WHERE id = %d", id)); v != want {
					return fmt.Errorf("paid = %s on the shard, want %s", v, want)
				}
				return nil
			})
			t.Logf("%s: the client got %s after %v; the shard holds paid = %s", tc.name, got, took.Round(time.Millisecond), want)
		})
	}
}
