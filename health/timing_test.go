package health

import (
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// hungServer accepts connections and never answers (a hung server, TCP open); it counts
// the connections it accepted and those still open.
type hungServer struct {
	ln             net.Listener
	accepted, open atomic.Int64
	wg             sync.WaitGroup
	once           sync.Once
}

// close stops accepting and waits for the open connections to be closed by their clients.
func (h *hungServer) close() {
	h.once.Do(func() { _ = h.ln.Close() })
	h.wg.Wait()
}

func newHungServer(t *testing.T) *hungServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hungServer{ln: ln}
	h.wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			h.accepted.Add(1)
			h.open.Add(1)
			h.wg.Go(func() {
				_, _ = io.Copy(io.Discard, nc) // until the checker closes it
				_ = nc.Close()
				h.open.Add(-1)
			})
		}
	})
	t.Cleanup(h.close)
	return h
}

// refusedAddr is a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// countingCollector counts the statuses published per backend.
type countingCollector struct {
	*collector
	mu sync.Mutex
	n  map[string]int
}

func (c *countingCollector) publish(st Status) {
	c.collector.publish(st)
	c.mu.Lock()
	c.n[st.Backend]++
	c.mu.Unlock()
}

func (c *countingCollector) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// TestSetTiming: a running checker takes up a new probe timing (a configuration reload)
// without a restart: a probe sleeping out a long interval wakes and probes at the new one, a
// shorter timeout and a lower down_after make a hung backend down fast, and the defaults
// fill zero fields.
func TestSetTiming(t *testing.T) {
	for _, tc := range []struct {
		name   string
		start  Options // Publish set by the test
		target func(t *testing.T) string
		next   Timing
		// check runs after SetTiming (at set) and says what is wrong ("" if nothing).
		check func(c *countingCollector, set time.Time) string
	}{
		{
			// Interval and SuspectInterval 5 s: without the change one probe (at start) in
			// the window; at 20 ms, many.
			name:   "ShorterIntervalWakesSleepingProbe",
			start:  Options{Interval: 5 * time.Second, SuspectInterval: 5 * time.Second, Timeout: 100 * time.Millisecond, DownAfter: 100},
			target: refusedAddr,
			next:   Timing{Interval: 20 * time.Millisecond, Timeout: 100 * time.Millisecond, DownAfter: 100},
			check: func(c *countingCollector, set time.Time) string {
				before := c.count("b")
				time.Sleep(time.Second)
				if n := c.count("b") - before; n < 5 {
					return "probes in the second after the change: " + strconv.Itoa(n) + ", want at least 5 (20 ms interval)"
				}
				return ""
			},
		},
		{
			// A hung backend under a 1 s timeout and 50 failures: down after ~55 s. After
			// the change (100 ms, 2 failures): down within the probe under way (1 s) and
			// two short ones (about 1.5 s; 4 s allowed on a loaded machine).
			name:   "ShorterTimeoutAndDownAfter",
			start:  Options{Interval: 200 * time.Millisecond, Timeout: time.Second, DownAfter: 50},
			target: func(t *testing.T) string { return newHungServer(t).ln.Addr().String() },
			next:   Timing{Interval: 200 * time.Millisecond, Timeout: 100 * time.Millisecond, DownAfter: 2},
			check: func(c *countingCollector, set time.Time) string {
				deadline := time.Now().Add(8 * time.Second)
				for time.Now().Before(deadline) {
					if st, at := c.get("b"); st.State == Down {
						if d := at.Sub(set); d > 4*time.Second {
							return "down " + d.String() + " after the change, want within 4 s"
						}
						return ""
					}
					time.Sleep(10 * time.Millisecond)
				}
				return "not down 8 s after the change"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			col := &countingCollector{collector: newCollector(), n: map[string]int{}}
			opts := tc.start
			opts.Publish = col.publish
			c := New(opts)
			defer c.Close()
			c.SetTargets([]Target{{Name: "b", Addr: tc.target(t), User: "u", Password: "p"}})
			waitUntil(t, 5*time.Second, "a first probe", func() bool { return col.count("b") > 0 })
			if !c.SetTiming(tc.next) {
				t.Fatal("SetTiming reported no change")
			}
			if got := c.Timing(); got != tc.next {
				t.Errorf("Timing() = %+v, want %+v", got, tc.next)
			}
			if msg := tc.check(col, time.Now()); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// TestSetTimingDefaults: zero fields mean the defaults; the same timing again is no change.
func TestSetTimingDefaults(t *testing.T) {
	c := New(Options{Interval: time.Second})
	defer c.Close()
	for _, tc := range []struct {
		set     Timing
		want    Timing
		changed bool
	}{
		{Timing{}, Timing{DefaultInterval, DefaultTimeout, DefaultDownAfter}, true},
		{Timing{Interval: DefaultInterval}, Timing{DefaultInterval, DefaultTimeout, DefaultDownAfter}, false},
		{Timing{Timeout: time.Second, DownAfter: 5}, Timing{DefaultInterval, time.Second, 5}, true},
	} {
		if got := c.SetTiming(tc.set); got != tc.changed {
			t.Errorf("SetTiming(%+v) changed = %v, want %v", tc.set, got, tc.changed)
		}
		if got := c.Timing(); got != tc.want {
			t.Errorf("after SetTiming(%+v): %+v, want %+v", tc.set, got, tc.want)
		}
	}
}

// TestRemovedTargetStops: a backend taken out of the targets is no longer probed: its
// goroutine ends and closes its probe connection, and nothing more is published for it;
// the backend that stays is still probed; Close leaves no goroutine behind.
func TestRemovedTargetStops(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	hung := newHungServer(t)
	col := &countingCollector{collector: newCollector(), n: map[string]int{}}
	c := New(Options{Interval: 20 * time.Millisecond, SuspectInterval: 20 * time.Millisecond, Timeout: 50 * time.Millisecond, Publish: col.publish})
	stay := Target{Name: "stay", Addr: refusedAddr(t), User: "u", Password: "p"}
	c.SetTargets([]Target{stay, {Name: "gone", Addr: hung.ln.Addr().String(), User: "u", Password: "p"}})
	waitUntil(t, 5*time.Second, "probes of both", func() bool { return col.count("gone") >= 2 && col.count("stay") >= 2 })
	c.SetTargets([]Target{stay})
	waitUntil(t, 5*time.Second, "the removed backend's probe connection closed", func() bool { return hung.open.Load() == 0 })
	accepted, published, kept := hung.accepted.Load(), col.count("gone"), col.count("stay")
	time.Sleep(500 * time.Millisecond)
	if n := hung.accepted.Load(); n != accepted {
		t.Errorf("the removed backend got %d more connections", n-accepted)
	}
	if n := col.count("gone"); n != published {
		t.Errorf("%d statuses published for the removed backend after its removal", n-published)
	}
	if col.count("stay") <= kept {
		t.Error("the backend that stayed is no longer probed")
	}
	if _, ok := c.Status("gone"); ok {
		t.Error("Status still knows the removed backend")
	}
	// Close leaves no goroutine of the checker behind.
	c.Close()
	hung.close()
	goleak.VerifyNone(t, leaks)
}
