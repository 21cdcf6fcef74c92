package health

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TestDialMalformedGreeting: a backend whose greeting is garbage (which panics go-mysql's
// handshake) fails the probe's dial with an error, not the process.
func TestDialMalformedGreeting(t *testing.T) {
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
			_, _ = nc.Write([]byte{1, 0, 0, 0, 10}) // HandshakeV10 cut after its first byte
			_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, _ = io.Copy(io.Discard, nc)
			_ = nc.Close()
		}
	})
	defer func() {
		_ = ln.Close()
		wg.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := dial(ctx, Target{Name: "b0", Addr: ln.Addr().String(), User: "u", Password: "p"}); err == nil {
		c.close()
		t.Fatal("dial succeeded against a garbage greeting")
	}
}
