package rules_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/rules"
)

// TestSemiSyncDeclared: failover.semi_sync_declared is a promote-mode setting, carried into
// the shard's Failover.
func TestSemiSyncDeclared(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fo       rules.FailoverConfig
		declared bool
		err      string
	}{
		{"PromoteDeclared", rules.FailoverConfig{Mode: rules.FailoverPromote, SemiSyncDeclared: true}, true, ""},
		{"PromoteUndeclared", rules.FailoverConfig{Mode: rules.FailoverPromote}, false, ""},
		{"FollowDeclared", rules.FailoverConfig{Mode: rules.FailoverFollow, SemiSyncDeclared: true}, false, "applies to mode promote only"},
		{"NoneDeclared", rules.FailoverConfig{SemiSyncDeclared: true}, false, "applies to mode promote only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			c.Shards[0].Failover = tc.fo
			snap, err := rules.Build(c)
			if tc.err != "" {
				if !errors.Is(err, rules.ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sh, _ := snap.Shard("s1")
			if sh.Failover.SemiSyncDeclared != tc.declared {
				t.Errorf("SemiSyncDeclared %v, want %v", sh.Failover.SemiSyncDeclared, tc.declared)
			}
		})
	}
}
