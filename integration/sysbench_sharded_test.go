package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSysbenchSharded runs sysbench's oltp_read_write with sbtest1 sharded by id over four
// real shards: prepare through the proxy (DDL on every shard, multi-row INSERTs split per
// shard), then point selects and writes routed by id and ranges, SUM, ORDER BY and DISTINCT
// scatter-gathered, with and without server-side prepared statements. Statements run in
// autocommit (--skip_trx): a transaction touching several shards is refused until
// multi-shard transactions exist.
func TestSysbenchSharded(t *testing.T) {
	bin := requireTool(t, "/usr/bin/sysbench", "sysbench")
	se := newShardedEnv(t, map[string]any{"name": "sbtest1", "kind": "sharded", "key": "id", "scheme": "by_user"})
	host, port, _ := strings.Cut(se.proxy.Addr, ":")
	const tableSize = 4000
	common := []string{"oltp_read_write", "--db-driver=mysql", "--mysql-host=" + host, "--mysql-port=" + port,
		"--mysql-user=" + appUser, "--mysql-password=" + appPass, "--mysql-db=shop",
		"--tables=1", fmt.Sprintf("--table-size=%d", tableSize), "--auto_inc=off", "--skip_trx=on",
		// Without transactions, two threads deleting and re-inserting the same id collide
		// (1062), against MariaDB directly too, often with the default hot-spot distribution.
		"--rand-type=uniform", "--mysql-ignore-errors=1062"}
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append(common, args...)...).CombinedOutput()
		if err != nil || strings.Contains(string(out), "FATAL") {
			t.Fatalf("sysbench %s: %v\n%s\n%s", args[len(args)-1], err, out, tail(se.proxy.log.String(), 4096))
		}
		return string(out)
	}
	total := func(t *testing.T) int {
		n := 0
		for i, sh := range se.shards {
			c, _ := strconv.Atoi(queryString(t, sh, "SELECT COUNT(*) FROM sbtest1"))
			misplaced := 0
			for _, id := range strings.Split(queryString(t, sh, "SELECT IFNULL(GROUP_CONCAT(id), '') FROM (SELECT id FROM sbtest1 ORDER BY RAND() LIMIT 50) s"), ",") {
				if id == "" {
					continue
				}
				v, _ := strconv.ParseInt(id, 10, 64)
				if userShard(t, v) != i {
					misplaced++
				}
			}
			if misplaced > 0 {
				t.Errorf("shard %d holds %d sampled rows the rules put elsewhere", i, misplaced)
			}
			if c == 0 {
				t.Errorf("shard %d holds no rows", i)
			}
			n += c
		}
		return n
	}
	run(t, "prepare")
	if n := total(t); n != tableSize {
		t.Fatalf("after prepare the shards hold %d rows, want %d", n, tableSize)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"PreparedStatements", []string{"--threads=4", "--time=10", "--db-ps-mode=auto"}},
		{"TextProtocol", []string{"--threads=4", "--time=5", "--db-ps-mode=disable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, append(tc.args, "--report-interval=0", "run")...)
			txns, ignored, reconnects := sysbenchCounts(t, out)
			t.Logf("%d transactions, %d ignored errors, %d reconnects", txns, ignored, reconnects)
			if txns < 20 || ignored*100 > txns || reconnects != 0 {
				t.Errorf("%d transactions, %d ignored errors, %d reconnects:\n%s", txns, ignored, reconnects, out)
			}
			if n := total(t); n != tableSize {
				t.Errorf("after the run the shards hold %d rows, want %d", n, tableSize)
			}
		})
	}
	run(t, "cleanup")
	for i, sh := range se.shards {
		if n := queryString(t, sh, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 'sbtest1'"); n != "0" {
			t.Errorf("shard %d still has sbtest1 after cleanup", i)
		}
	}
}
