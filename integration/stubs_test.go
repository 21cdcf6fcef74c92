package integration

import "testing"

func testSessionState(t *testing.T, e *env)     { t.Skip("todo") }
func testTransactions(t *testing.T, e *env)     { t.Skip("todo") }
func testProxyFunctions(t *testing.T, e *env)   { t.Skip("todo") }
func testRouting(t *testing.T, e *env)          { t.Skip("todo") }
func testMariaDBClient(t *testing.T, e *env)    { t.Skip("todo") }
func testSysbench(t *testing.T, e *env)         { t.Skip("todo") }
func testGracefulShutdown(t *testing.T, e *env) { t.Skip("todo") }
func testBadInput(t *testing.T, e *env)         { t.Skip("todo") }
