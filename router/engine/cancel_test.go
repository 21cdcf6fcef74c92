package engine

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/wire"
)

// pipeConn is a Conn over one end of a net.Pipe; only what an Interrupter touches works.
type pipeConn struct {
	Conn // nil: any other method panics
	w    *wire.Conn
	st   wire.ConnState
}

func (c *pipeConn) Wire() *wire.Conn       { return c.w }
func (c *pipeConn) State() *wire.ConnState { return &c.st }

// TestInterrupter arms each mode around a one-byte exchange (a read from the backend end)
// whose context ends before it, during it, after it or never, and checks what Stop
// reports, how often the kill ran (also after Stop, once the context ends late), whether
// the connection was given up and whether the exchange got its answer.
func TestInterrupter(t *testing.T) {
	const (
		before = iota // ctx already ended when the interrupter is armed
		during        // ctx ends while the exchange waits for the backend
		after         // the exchange completes, then ctx ends
		never         // ctx cannot end
	)
	errKill := errors.New("kill failed")
	tests := []struct {
		name       string
		interrupt  bool  // Interrupt, else Watch
		noKill     bool  // Watch with a nil kill
		killErr    error // what the kill returns
		when       int
		wantFired  bool
		wantKills  int32
		wantBroken bool
		wantAnswer bool // the exchange read the backend's byte
	}{
		{"WatchBefore", false, false, nil, before, true, 1, true, false},
		{"WatchDuring", false, false, nil, during, true, 1, true, false},
		{"WatchAfter", false, false, nil, after, false, 0, false, true},
		{"WatchNever", false, false, nil, never, false, 0, false, true},
		{"WatchDuringNoKill", false, true, nil, during, true, 0, true, false},
		{"WatchDuringKillFails", false, false, errKill, during, true, 1, true, false},
		{"InterruptBefore", true, false, nil, before, true, 1, false, true},
		{"InterruptDuring", true, false, nil, during, true, 1, false, true},
		{"InterruptAfter", true, false, nil, after, false, 0, false, true},
		{"InterruptNever", true, false, nil, never, false, 0, false, true},
		{"InterruptDuringKillFails", true, false, errKill, during, true, 1, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			defer server.Close()
			c := &pipeConn{w: wire.NewConn(client, 0)}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.when == never {
				ctx = context.Background()
			}
			if tt.when == before {
				cancel()
			}
			answer := func() { _, _ = server.Write([]byte{1}) } // what the backend sends
			var kills atomic.Int32
			kill := func() error {
				kills.Add(1)
				if !tt.interrupt && !c.st.Broken() {
					t.Error("Watch killed before marking the connection broken")
				}
				if tt.interrupt && tt.killErr == nil {
					go answer() // the killed statement answers; the drain reads it
				}
				return tt.killErr
			}
			if tt.noKill {
				kill = nil
			}
			var it *Interrupter
			if tt.interrupt {
				drain := time.Minute // the killed statement's answer comes long before
				if tt.killErr != nil {
					drain = 50 * time.Millisecond // no answer comes: the drain bound ends the read
				}
				it = Interrupt(ctx, c, drain, kill)
			} else {
				it = Watch(ctx, c, kill)
			}
			switch tt.when {
			case during:
				time.AfterFunc(20*time.Millisecond, cancel)
			case after, never:
				go answer()
			}
			_, err := client.Read(make([]byte, 1))
			fired := it.Stop()
			if tt.when == after {
				cancel() // too late: Stop has returned
			}

			if fired != tt.wantFired {
				t.Errorf("Stop() = %v, want %v", fired, tt.wantFired)
			}
			if got := kills.Load(); got != tt.wantKills {
				t.Errorf("kill ran %d times, want %d", got, tt.wantKills)
			}
			if got := c.st.Broken(); got != tt.wantBroken {
				t.Errorf("Broken() = %v, want %v", got, tt.wantBroken)
			}
			if (err == nil) != tt.wantAnswer {
				t.Errorf("exchange read err = %v, want answer %v", err, tt.wantAnswer)
			}
		})
	}
}
