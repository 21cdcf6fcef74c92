package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the closers' timer goroutine and the test.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{} // cap 1: signalled after each write
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer func() {
		select {
		case b.wrote <- struct{}{}:
		default:
		}
	}()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestClosers: steps run last added first, each once; a step slower than warnAfter is
// named in the log while it runs and when it ends, a fast one is not.
func TestClosers(t *testing.T) {
	out := syncBuffer{wrote: make(chan struct{}, 1)}
	c := newClosers(slog.New(slog.NewTextHandler(&out, nil)))
	c.warnAfter = 50 * time.Millisecond
	var order []string
	release := make(chan struct{})
	c.add("first", func() { order = append(order, "first") })
	c.add("slow", func() {
		order = append(order, "slow")
		<-release
	})
	c.add("last", func() { order = append(order, "last") })
	done := make(chan struct{})
	go func() {
		c.run()
		close(done)
	}()
	timeout := time.After(10 * time.Second)
	for !strings.Contains(out.String(), `msg="shutdown: a step is still running" step=slow`) {
		select {
		case <-out.wrote:
		case <-timeout:
			t.Fatalf("the slow step was not reported while it ran; log:\n%s", out.String())
		}
	}
	close(release)
	<-done
	if got := strings.Join(order, ","); got != "last,slow,first" {
		t.Errorf("order %s, want last,slow,first", got)
	}
	logs := out.String()
	if !strings.Contains(logs, `msg="shutdown: a slow step finished" step=slow`) {
		t.Errorf("the slow step's end was not logged:\n%s", logs)
	}
	if strings.Contains(logs, "step=first") || strings.Contains(logs, "step=last") {
		t.Errorf("a fast step was reported:\n%s", logs)
	}
	c.run() // steps run once
	if len(order) != 3 {
		t.Errorf("a second run ran steps again: %v", order)
	}
}
