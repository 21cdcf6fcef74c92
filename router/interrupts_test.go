package router

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/rules"
)

// metricsLog records what Metrics counts.
type metricsLog struct {
	mu       sync.Mutex
	timeouts []string
	kills    []string
}

func (m *metricsLog) StatementTimeout(source string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.timeouts = append(m.timeouts, source)
}

func (m *metricsLog) BackendKill(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kills = append(m.kills, reason)
}

func testInterrupts() (interrupts, *metricsLog) {
	m := &metricsLog{}
	return interrupts{metrics: m, log: slog.New(slog.NewTextHandler(io.Discard, nil)), connID: 7}, m
}

// TestInterruptsWithTimeout: a statement that runs out of its deadline is counted by the
// deadline's source; one that ends otherwise (success, its client's own cancellation) is
// not, and no deadline leaves the context as it was.
func TestInterruptsWithTimeout(t *testing.T) {
	in, m := testInterrupts()
	wait := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	if err := in.withTimeout(context.Background(), time.Millisecond, SourceUser, wait); err == nil {
		t.Fatal("a statement past its deadline succeeded")
	}
	if err := in.withTimeout(context.Background(), time.Hour, SourceServer, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	parent, cancel := context.WithCancel(context.Background())
	cancel()
	_ = in.withTimeout(parent, time.Hour, SourceHint, wait)
	if err := in.withTimeout(context.Background(), 0, SourceSession, func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); ok {
			t.Error("no deadline: the statement's context has one")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.timeouts, []string{SourceUser}) {
		t.Errorf("timeouts counted %q, want [user]", m.timeouts)
	}
}

// TestInterruptsKillOnDone: the kill armed for an exchange names why its context ended, and
// reaches the connection's own server.
func TestInterruptsKillOnDone(t *testing.T) {
	in, m := testInterrupts()
	be := newFakeBackend()
	c := &fakeConn{be: be, shard: "s0", id: 3}
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	<-ctx.Done()
	if err := in.killOnDone(ctx, &rules.Shard{Name: "s0"}, c)(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.kills, []string{ReasonTimeout}) || !slices.Equal(be.kills, []string{"s0#3"}) {
		t.Errorf("kills counted %q, sent %q; want [timeout], [s0#3]", m.kills, be.kills)
	}
}
