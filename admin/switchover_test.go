package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeSwitcher answers by shard name: s0 succeeds, s8 is refused, s7 fails mid-way, others
// are unknown.
type fakeSwitcher struct{ calls []string }

func (f *fakeSwitcher) Switchover(_ context.Context, shard, to string) (SwitchoverResult, error) {
	f.calls = append(f.calls, shard+">"+to)
	switch shard {
	case "s0":
		return SwitchoverResult{Shard: shard, Old: "b0", New: "b1", PausedMS: 12.5, Position: "0-1-9"}, nil
	case "s8":
		return SwitchoverResult{}, fmt.Errorf("%w: 3 connections still in use", ErrSwitchoverRefused)
	case "s7":
		return SwitchoverResult{}, errors.New("promoting b1: read_only: connection refused")
	}
	return SwitchoverResult{}, fmt.Errorf("%w: unknown shard %q", ErrNotFound, shard)
}

func TestSwitchoverEndpoint(t *testing.T) {
	f := &fakeProxy{ready: true}
	sw := &fakeSwitcher{}
	s, err := New(Options{Proxy: f, Access: f, Switcher: sw})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	cases := []struct {
		path, token string
		want        int
		frag        string
	}{
		{"/api/v1/shards/s0/switchover", "", 401, ""},
		{"/api/v1/shards/s0/switchover", "read-tok", 403, ""},
		{"/api/v1/shards/s0/switchover?to=b1", "admin-tok", 200, `"paused_ms": 12.5`},
		{"/api/v1/shards/s8/switchover", "admin-tok", 409, "still in use"},
		{"/api/v1/shards/s7/switchover", "admin-tok", 502, "promoting b1"},
		{"/api/v1/shards/s9/switchover", "admin-tok", 404, "unknown shard"},
	}
	for _, c := range cases {
		code, body := do(t, ts, "POST", c.path, c.token)
		if code != c.want || !strings.Contains(body, c.frag) {
			t.Errorf("POST %s (%q): %d %s; want %d containing %q", c.path, c.token, code, body, c.want, c.frag)
		}
	}
	if got := strings.Join(sw.calls, ","); got != "s0>b1,s8>,s7>,s9>" {
		t.Errorf("switchover calls %s", got)
	}
	if code, body := do(t, ts, "GET", "/api/v1/events", "read-tok"); code != 200 || !strings.Contains(body, "switchover s0 to b1") {
		t.Errorf("events: %d %s", code, body)
	}
	noSw, _ := New(Options{Proxy: f, Access: f})
	ts2 := httptest.NewServer(noSw)
	defer ts2.Close()
	if code, _ := do(t, ts2, "POST", "/api/v1/shards/s0/switchover", "admin-tok"); code != 501 {
		t.Errorf("without a Switcher: %d, want 501", code)
	}
}
