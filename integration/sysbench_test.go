package integration

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testSysbench runs sysbench's oltp_read_write (transactions of point selects, ranges,
// updates, deletes and inserts through server-side prepared statements that libmariadb
// re-executes without resending parameter types) through the proxy, then with prepared
// statements disabled.
func testSysbench(t *testing.T, e *env) {
	bin := requireTool(t, "/usr/bin/sysbench", "sysbench")
	m := dbMap{Logical: "sbtest", Physical: "sbtest_phys"}
	p := startProxy(t, e.config(t, m))
	host, port, _ := strings.Cut(p.Addr, ":")
	const tableSize = 10000
	common := []string{"oltp_read_write", "--db-driver=mysql", "--mysql-host=" + host, "--mysql-port=" + port,
		"--mysql-user=" + appUser, "--mysql-password=" + appPass, "--mysql-db=" + m.Logical,
		"--tables=2", fmt.Sprintf("--table-size=%d", tableSize)}
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append(common, args...)...).CombinedOutput()
		if err != nil || strings.Contains(string(out), "FATAL") {
			t.Fatalf("sysbench %s: %v\n%s", args[len(args)-1], err, out)
		}
		return string(out)
	}
	direct := e.direct(t, m.Physical)

	run(t, "--threads=2", "prepare")
	for _, table := range []string{"sbtest1", "sbtest2"} {
		if n := queryString(t, direct, "SELECT COUNT(*) FROM "+table); n != strconv.Itoa(tableSize) {
			t.Fatalf("after prepare, %s has %s rows on MariaDB, want %d", table, n, tableSize)
		}
	}
	for _, tc := range []struct {
		name    string
		args    []string
		minimum int // transactions; a loaded 2-core machine still does far more
	}{
		{"PreparedStatements", []string{"--threads=4", "--time=10", "--db-ps-mode=auto"}, 100},
		{"TextProtocol", []string{"--threads=4", "--time=5", "--db-ps-mode=disable"}, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, append(tc.args, "--report-interval=0", "run")...)
			txns, ignored, reconnects := sysbenchCounts(t, out)
			t.Logf("%d transactions, %d ignored errors (deadlocks sysbench retries), %d reconnects", txns, ignored, reconnects)
			if txns < tc.minimum {
				t.Errorf("%d transactions, want at least %d:\n%s", txns, tc.minimum, out)
			}
			// sysbench aborts on any error but deadlocks and lock wait timeouts (1213, 1205,
			// 1020), which it counts as ignored and retries; those are MariaDB's doing, but
			// should stay rare at this size.
			if ignored*100 > txns {
				t.Errorf("%d ignored errors for %d transactions:\n%s", ignored, txns, out)
			}
			if reconnects != 0 {
				t.Errorf("%d reconnects:\n%s", reconnects, out)
			}
			// oltp_read_write deletes and re-inserts rows: the row count stays the same.
			for _, table := range []string{"sbtest1", "sbtest2"} {
				if n := queryString(t, direct, "SELECT COUNT(*) FROM "+table); n != strconv.Itoa(tableSize) {
					t.Errorf("after the run, %s has %s rows on MariaDB, want %d", table, n, tableSize)
				}
			}
		})
	}
	run(t, "cleanup")
	if n := queryString(t, direct, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sbtest_phys'"); n != "0" {
		t.Errorf("%s tables left after cleanup", n)
	}
}

// sysbenchCounts reads the transactions, ignored errors and reconnects of a sysbench run.
func sysbenchCounts(t *testing.T, out string) (txns, ignored, reconnects int) {
	t.Helper()
	stat := func(name string) int {
		m := regexp.MustCompile(name + `:\s+(\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no %q in sysbench output:\n%s", name, out)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return stat("transactions"), stat("ignored errors"), stat("reconnects")
}
