package main

import (
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/protocol"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/rules/source"
)

// descRecorder is a Registerer that records the metric names every collector describes.
type descRecorder struct {
	prometheus.Registerer
	names map[string]bool
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := fqNameRE.FindStringSubmatch(desc.String()); m != nil {
			d.names[m[1]] = true
		}
	}
	return d.Registerer.Register(c)
}

func (d descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := d.Register(c); err != nil {
			panic(err)
		}
	}
}

// TestDashboardMetrics: every metric the Grafana dashboard's expressions name is one the
// proxy registers (the metric sources serve wires, described without a backend).
func TestDashboardMetrics(t *testing.T) {
	reg := descRecorder{Registerer: prometheus.NewRegistry(), names: map[string]bool{}}
	snap, err := buildSnapshot([]byte(testDoc), rules.SecretsMap{"B0_PW": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	tp, checker, err := newTopology(snap, log, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	defer checker.Close()
	newTimedBackend(tp, reg)
	newReloader(&memSource{}, nil, rules.NewStore(snap), tp, source.LastKnownGood{}, fixedSettings{snap: snap}, reg, log)
	newXAMetrics(reg)
	newMetrics(reg)
	newStatementMetrics(reg)
	registerRuntime(reg)
	srv, err := protocol.NewServer(protocol.Options{Logger: log}, users{rules.NewStore(snap)}, handler{})
	if err != nil {
		t.Fatal(err)
	}
	registerConnMetrics(reg, srv)
	reg.MustRegister(backendCollector{tp: tp})

	data, err := os.ReadFile("../../deploy/grafana/shardproxy.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\b(?:shardproxy|go|process)_[a-z0-9_]+`)
	checked := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, n := range names.FindAllString(tg.Expr, -1) {
				base := n
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(n, suf); ok && reg.names[b] {
						base = b
					}
				}
				if !reg.names[base] {
					t.Errorf("the dashboard uses %s, which the proxy does not register (%s)", n, tg.Expr)
				}
				checked++
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d metric references checked", checked)
	}
	for n := range reg.names {
		if strings.HasPrefix(n, "shardproxy_") && !strings.Contains(string(data), n) {
			t.Errorf("the proxy exports %s but the dashboard does not show it", n)
		}
	}
}
