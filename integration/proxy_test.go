package integration

import "testing"

// TestProxy runs the end-to-end suite: the shardproxy binary in front of one real MariaDB
// (shared by every subtest; each subtest uses databases and proxies of its own), reached by
// real clients over TCP.
func TestProxy(t *testing.T) {
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
		{"MariaDBClient", testMariaDBClient},
		{"Sysbench", testSysbench},
		{"ConcurrentLoad", testConcurrentLoad},
		{"Limits", testLimits},
		{"GracefulShutdown", testGracefulShutdown},
		{"BadInput", testBadInput},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, e) })
	}
}
