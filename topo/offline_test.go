package topo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestSetOffline: an offline backend gets no new statement (its shard's error says why),
// the statement in flight keeps its connection until it is released, the pool then closes,
// and SetOnline brings it back with a fresh pool. A backend fenced by a failover cannot be
// brought online this way.
func TestSetOffline(t *testing.T) {
	snap := snapshot(t, nil)
	tp := newTopo(t, snap, time.Minute)
	old := maps(tp)["b1"]
	if !old.enter() { // a statement in flight on b1
		t.Fatal("enter refused")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	n, err := tp.SetOffline(ctx, "b1")
	cancel()
	if err != nil || n != 1 {
		t.Fatalf("SetOffline = %d, %v; want 1 connection still in use", n, err)
	}
	select {
	case <-old.idle:
		t.Fatal("drained while a connection is in use")
	default:
	}
	s1, _ := snap.Shard("s1")
	if _, err := tp.Acquire(t.Context(), s1, rules.RolePrimary); err == nil || !strings.Contains(err.Error(), "offline: drained by an operator") {
		t.Errorf("Acquire of an offline primary: %v", err)
	}
	if bs := tp.Backends(); !IsOffline(bs[0].Fenced) {
		t.Errorf("view of b1: %+v", bs[0])
	}
	old.leave()
	waitClosed(t, old)
	if n, err := tp.SetOffline(t.Context(), "b1"); err != nil || n != 0 {
		t.Errorf("SetOffline again: %d %v", n, err)
	}
	if err := tp.SetOnline("b1"); err != nil {
		t.Fatal(err)
	}
	if bs := tp.Backends(); bs[0].Fenced != "" || maps(tp)["b1"] == old {
		t.Errorf("after SetOnline: %+v", bs[0])
	}
	if _, err := tp.SetOffline(t.Context(), "b9"); !errors.Is(err, ErrUnknownBackend) {
		t.Errorf("unknown backend: %v", err)
	}
	tp.fence("b2", "old primary after a failover")
	if err := tp.SetOnline("b2"); err == nil || !strings.Contains(err.Error(), "rebuild it") {
		t.Errorf("SetOnline of a fenced backend: %v", err)
	}
}

// TestAcquireErrorDialTimeout: a dial timeout while the statement's context is live is an
// unreachable backend (1429), not a statement timeout (3024); a statement whose own context
// ended keeps its context error.
func TestAcquireErrorDialTimeout(t *testing.T) {
	s1, _ := snapshot(t, nil).Shard("s1")
	dial := fmt.Errorf("pool: dial: %w", context.DeadlineExceeded)
	err := acquireError(t.Context(), s1, "b1", dial)
	if e, ok := sqlerr.As(err); !ok || e.Code != sqlerr.ErCantConnect {
		t.Errorf("dial timeout: %v, want 1429", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := acquireError(ctx, s1, "b1", fmt.Errorf("wait: %w", context.Canceled)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled statement: %v", err)
	}
}
