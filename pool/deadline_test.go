package pool

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// TestDialDeadlineIsTheContexts: a dial cut short by the caller's deadline reports
// context.DeadlineExceeded every time, so the statement gets 3024 and not "can't connect".
// The socket's deadline is the context's, and its i/o timeout used to win the race against
// the context's timer about two times in three (found by TestSoak).
func TestDialDeadlineIsTheContexts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var held []net.Conn // a server that accepts and never greets
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	})
	defer func() {
		_ = ln.Close()
		wg.Wait()
		for _, c := range held {
			_ = c.Close()
		}
	}()
	p, err := New(Options{Addr: ln.Addr().String(), User: "u", DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
		c, err := p.Acquire(ctx)
		cancel()
		if err == nil {
			p.Release(c)
			t.Fatal("a dial to a server that never greets succeeded")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("dial %d: %v, want context.DeadlineExceeded", i, err)
		}
	}
}
