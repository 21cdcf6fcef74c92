package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/rules"
)

// TestExampleConfigs runs check-config on every configuration in examples/: the demo
// (scripts/demo.sh) and the README point at them.
func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configurations: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out bytes.Buffer
			cmd := newCheckConfigCmd()
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs([]string{f})
			if err := cmd.ExecuteContext(t.Context()); err != nil {
				t.Fatalf("check-config %s: %v\n%s", f, err, out.String())
			}
			if !strings.Contains(out.String(), "config OK") {
				t.Fatalf("check-config %s said:\n%s", f, out.String())
			}
		})
	}
}

// TestDemoConfigHasReplicas: every shard of the demo is a primary and a replica in failover
// mode promote, each backend with the replication address of its container.
func TestDemoConfigHasReplicas(t *testing.T) {
	snap, err := loadSnapshot(filepath.Join("..", "..", "examples", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	shards := snap.Shards()
	if len(shards) != 4 {
		t.Fatalf("%d shards, want 4", len(shards))
	}
	for _, sh := range shards {
		if len(sh.Replicas) != 1 {
			t.Errorf("shard %s has %d replicas, want 1", sh.Name, len(sh.Replicas))
		}
		if sh.Failover.Mode != rules.FailoverPromote {
			t.Errorf("shard %s failover mode %q, want promote", sh.Name, sh.Failover.Mode)
		}
	}
	for _, b := range snap.Backends() {
		if b.ReplicationAddr == "" || b.ReplicationAddr == b.Addr {
			t.Errorf("backend %s: replication_addr %q, want its container's address", b.Name, b.ReplicationAddr)
		}
	}
}
