package integration

import (
	"testing"

	"go.uber.org/goleak"
)

// TestProxy runs the end-to-end suite: the shardproxy binary in front of one real MariaDB
// (shared by every subtest; each subtest uses databases and proxies of its own), reached by
// real clients over TCP.
func TestProxy(t *testing.T) {
	// Registered first, so it runs last: after every handle, proxy and container is gone,
	// nothing this test started may still run (other tests of the package are not its
	// business).
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if err := goleak.Find(before); err != nil && !t.Failed() {
			t.Errorf("goroutines left behind: %v", err)
		}
	})
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"ColumnTypes", testColumnTypes},
		{"BinaryProtocol", testBinaryProtocol},
		{"LongData", testLongData},
		{"PreparedStatementCache", testPreparedStatementCache},
		{"Streaming", testStreaming},
		{"MultiStatements", testMultiStatements},
		{"ResetConnection", testResetConnection},
		{"Auth", testAuth},
		{"Errors", testErrors},
		{"PacketTooLarge", testPacketTooLarge},
		{"TLS", testTLS},
		{"SessionState", testSessionState},
		{"Transactions", testTransactions},
		{"ProxyFunctions", testProxyFunctions},
		{"PreviousStatementState", testPreviousStatementState},
		{"Routing", testRouting},
		{"InformationSchema", testInformationSchema},
		{"Isolation", testIsolation},
		{"Barrier", testBarrier},
		{"MariaDBStatements", testMariaDBStatements},
		{"StoredPrograms", testStoredPrograms},
		{"ResetEverything", testResetEverything},
		{"ServerCodes", testServerCodes},
		{"LeastPrivilege", testLeastPrivilege},
		{"MariaDBClient", testMariaDBClient},
		{"Sysbench", testSysbench},
		{"ConcurrentLoad", testConcurrentLoad},
		{"Limits", testLimits},
		{"Deadline", testDeadline},
		{"GracefulShutdown", testGracefulShutdown},
		{"BadInput", testBadInput},
		{"HostileClients", testHostileClients},
		{"ScatterGroupsBound", testScatterGroupsBound},
		{"SubqueryValuesBound", testSubqueryValuesBound},
		{"LoadData", testLoadData},
		{"SslStatus", testSslStatus},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, e) })
	}
}
