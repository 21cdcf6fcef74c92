package main

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/topo"
)

// TestFailoverMetrics: every event is counted by kind; switches to a new primary (promoted or
// followed) are timed in shardproxy_failover_duration_seconds by mode, nothing else is.
func TestFailoverMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newFailoverMetrics(reg)
	for _, e := range []topo.Event{
		{Kind: topo.EventPromoted, Mode: "promote", Took: 400 * time.Millisecond},
		{Kind: topo.EventPromoted, Mode: "promote", Took: 2 * time.Second},
		{Kind: topo.EventPromoted, Mode: "follow", Took: 100 * time.Millisecond},
		{Kind: topo.EventRefused, Reason: "semi-sync off"},
		{Kind: topo.EventSettings},
	} {
		m.observe(e)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			label := mt.GetLabel()[0].GetValue()
			switch mf.GetName() {
			case "shardproxy_failover_duration_seconds":
				h := mt.GetHistogram()
				got["count_"+label] = float64(h.GetSampleCount())
				got["sum_"+label] = h.GetSampleSum()
			case "shardproxy_failover_events_total":
				got[label] = mt.GetCounter().GetValue()
			}
		}
	}
	want := map[string]float64{"count_promote": 2, "sum_promote": 2.4, "count_follow": 1, "sum_follow": 0.1,
		"promoted": 3, "refused": 1, "failed": 0, "settings": 1}
	for k, v := range want {
		if d := got[k] - v; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
