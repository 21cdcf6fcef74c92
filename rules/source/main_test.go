package source

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines. The embedded three-member etcd cluster of the
// leader-change test leaves its members' peer HTTP connections (rafthttp) to wind down
// after Close; this package itself uses no net/http, so those are ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		goleak.IgnoreAnyFunction("net/http.(*connReader).backgroundRead"),
	)
}
