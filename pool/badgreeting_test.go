package pool

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"
)

// TestDialBadGreeting: a server whose greeting or login answers are garbage fails the dial
// (an error, the socket closed) instead of panicking the process.
func TestDialBadGreeting(t *testing.T) {
	for _, c := range []struct {
		name     string
		greeting []byte
	}{
		{"empty packet", []byte{0, 0, 0, 0}},
		{"protocol byte only", []byte{1, 0, 0, 0, 10}},
		{"version without NUL", []byte{3, 0, 0, 0, 10, 'x', 'y'}},
		{"truncated after the scramble", append([]byte{14, 0, 0, 0, 10, '5', 0, 1, 0, 0, 0}, []byte("abcdefg")...)},
		{"ERR too short", []byte{1, 0, 0, 0, 0xff}},
		{"header announcing 16 MiB, then close", []byte{0xff, 0xff, 0xff, 0, 10}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					nc, err := ln.Accept()
					if err != nil {
						return
					}
					_, _ = nc.Write(c.greeting)
					_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
					_, _ = io.Copy(io.Discard, io.LimitReader(nc, 1<<16))
					_ = nc.Close()
				}
			})
			defer func() {
				_ = ln.Close()
				wg.Wait()
			}()
			p, err := New(Options{Addr: ln.Addr().String(), User: "u", Password: "p", DialTimeout: 3 * time.Second,
				AcquireTimeout: 3 * time.Second, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := p.Acquire(ctx)
			if err == nil {
				p.Release(c)
				t.Fatal("Acquire succeeded against a garbage greeting")
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Acquire = %v: the garbage was noticed only at the deadline", err)
			}
		})
	}
}
