package txn

import (
	"context"
	"sync"
	"testing"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// fakeBackend hands out fakeConns and keeps those given back unbroken as idle.
type fakeBackend struct {
	mu   sync.Mutex
	log  callLog
	idle map[string][]*fakeConn
}

func (be *fakeBackend) Acquire(_ context.Context, shard *rules.Shard, _ rules.Role) (engine.Conn, error) {
	be.mu.Lock()
	defer be.mu.Unlock()
	if n := len(be.idle[shard.Name]); n > 0 {
		c := be.idle[shard.Name][n-1]
		be.idle[shard.Name] = be.idle[shard.Name][:n-1]
		return c, nil
	}
	return &fakeConn{shard: shard.Name, log: &be.log}, nil
}

func (be *fakeBackend) Release(c engine.Conn) {
	be.mu.Lock()
	defer be.mu.Unlock()
	fc := c.(*fakeConn)
	if fc.broken {
		return
	}
	if be.idle == nil {
		be.idle = map[string][]*fakeConn{}
	}
	be.idle[fc.shard] = append(be.idle[fc.shard], fc)
}

func (be *fakeBackend) idleCount(shard string) int {
	be.mu.Lock()
	defer be.mu.Unlock()
	return len(be.idle[shard])
}

// TestRecoveryPanicClosesItsConnection: a panic while a recovery pass works on a server
// fails that server's part of the pass, with its connection closed, not the process.
func TestRecoveryPanicClosesItsConnection(t *testing.T) {
	be := &fakeBackend{}
	rc := NewRecoverer(RecoverOptions{Backend: be})
	shard := &rules.Shard{Name: "s0"}
	err := rc.withConn(context.Background(), shard, func(c engine.Conn) error { panic("malformed XA RECOVER row") })
	if e, ok := sqlerr.As(err); !ok || e.Code != sqlerr.ErUnknownError {
		t.Fatalf("withConn = %v, want the panic as an error", err)
	}
	if n := be.idleCount("s0"); n != 0 {
		t.Errorf("%d idle connections on s0, want the panicking pass's connection closed", n)
	}
	if err := rc.withConn(context.Background(), shard, func(engine.Conn) error { return nil }); err != nil {
		t.Errorf("the next pass: %v", err)
	}
}
