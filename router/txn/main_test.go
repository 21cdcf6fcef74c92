package txn

import (
	"testing"

	"go.uber.org/goleak"
)

// The coordinator runs branches in goroutines it waits for; the tests' fake servers are
// stopped by their backend's Close. None may outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
