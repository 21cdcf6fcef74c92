package pool

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	base := Options{Addr: "127.0.0.1:3306", User: "u"}
	for _, tc := range []struct {
		name string
		set  func(*Options)
		want []string // substrings of the error; none: valid
	}{
		{"defaults", func(*Options) {}, nil},
		{"explicit", func(o *Options) {
			o.MaxOpen, o.MaxIdle, o.MinIdle = 10, 5, 2
			o.MaxLifetime, o.IdleTimeout = time.Minute, time.Second
		}, nil},
		{"unlimited lifetime", func(o *Options) { o.MaxLifetime = -1 }, nil},
		{"MaxIdle defaults to MaxOpen", func(o *Options) { o.MaxOpen = 3; o.MinIdle = 3 }, nil},
		{"no addr", func(o *Options) { o.Addr = "" }, []string{"Addr is empty"}},
		{"no user", func(o *Options) { o.User = "" }, []string{"User is empty"}},
		{"negative MaxOpen", func(o *Options) { o.MaxOpen = -1 }, []string{"MaxOpen is negative (-1)"}},
		{"negative MaxIdle", func(o *Options) { o.MaxIdle = -2 }, []string{"MaxIdle is negative (-2)"}},
		{"negative MinIdle", func(o *Options) { o.MinIdle = -3 }, []string{"MinIdle is negative (-3)"}},
		{"MaxIdle > MaxOpen", func(o *Options) { o.MaxOpen = 5; o.MaxIdle = 6 }, []string{"MaxIdle (6) > MaxOpen (5)"}},
		{"MaxIdle > default MaxOpen", func(o *Options) { o.MaxIdle = 101 }, []string{"MaxIdle (101) > MaxOpen (100)"}},
		{"MinIdle > MaxIdle", func(o *Options) { o.MaxIdle = 2; o.MinIdle = 3 }, []string{"MinIdle (3) > MaxIdle (2)"}},
		{"negative durations", func(o *Options) {
			o.IdleTimeout, o.AcquireTimeout, o.DialTimeout, o.PingAfterIdle = -1, -2, -3, -4
		}, []string{
			"IdleTimeout is negative (-1ns)", "AcquireTimeout is negative (-2ns)",
			"DialTimeout is negative (-3ns)", "PingAfterIdle is negative (-4ns)",
		}},
		{"unknown collation", func(o *Options) { o.Collation = "klingon_ci" }, []string{`unknown Collation "klingon_ci"`}},
		{"several", func(o *Options) { o.Addr = ""; o.MaxOpen = -1 }, []string{"Addr is empty", "MaxOpen is negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.set(&o)
			err := o.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("Validate: %v, want ErrInvalidOptions", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %q does not contain %q", err, w)
				}
			}
			if _, nerr := New(o); nerr == nil {
				t.Error("New accepted invalid options")
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{Addr: "a:1", User: "u", MaxOpen: 7}.withDefaults()
	if o.MaxIdle != 7 || o.MinIdle != 0 || o.Collation != "utf8mb4_general_ci" ||
		o.MaxLifetime != 30*time.Minute || o.IdleTimeout != 5*time.Minute ||
		o.AcquireTimeout != 5*time.Second || o.DialTimeout != 3*time.Second ||
		o.PingAfterIdle != time.Second || o.Logger == nil {
		t.Fatalf("defaults: %+v", o)
	}
	if d := maintenanceInterval(o); d != time.Second {
		t.Fatalf("maintenance interval %s, want 1s", d)
	}
	o.IdleTimeout = 200 * time.Millisecond
	if d := maintenanceInterval(o); d != 50*time.Millisecond {
		t.Fatalf("maintenance interval %s, want 50ms", d)
	}
}

// TestNewDoesNotDial: New on an address where nothing listens succeeds; only Acquire dials.
func TestNewDoesNotDial(t *testing.T) {
	p, err := New(Options{Addr: "127.0.0.1:1", User: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Open != 0 || s.Dials != 0 || s.DialErrors != 0 {
		t.Fatalf("stats: %+v", s)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}
