package router

import (
	"context"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/shardproxy/shardproxy/rules"
)

// TestOnlyComments: a query of comments is answered OK, an empty one 1065 (as MariaDB).
func TestOnlyComments(t *testing.T) {
	for q, want := range map[string]bool{
		"": false, " ": false, ";": false, " ; \n": false,
		"-- x": true, "/* x */": true, "# x": true, "/* x */ ;": true, "/*!40101 */": true,
	} {
		if got := onlyComments(q); got != want {
			t.Errorf("onlyComments(%q) = %v, want %v", q, got, want)
		}
	}
}

// TestSessionProxyAnswers: comment-only queries, the proxy's version and packet limit, and
// LOAD DATA LOCAL INFILE from a client without LOCAL INFILE never reach a backend.
func TestSessionProxyAnswers(t *testing.T) {
	be := newFakeBackend()
	snap, err := rules.Build(plantest.PassthroughConfig())
	if err != nil {
		t.Fatal(err)
	}
	r := New(Options{Rules: rules.NewStore(snap), Backend: be, ServerVersion: "5.5.5-10.11.0-MariaDB-shardproxy", MaxAllowedPacket: 1 << 20})
	s := fakeSession(t, r, "app", 1)
	var w clientRecorder
	exec(t, s, "/* nothing */", &w)
	if oks := w.oks(); len(oks) != 1 {
		t.Errorf("comment-only query answered %d OKs", len(oks))
	}
	wantLog(t, be)
	exec(t, s, "SELECT @@version, VERSION(), @@global.max_allowed_packet", &w)
	wantLog(t, be, "s_shop#1: SELECT '10.11.0-MariaDB-shardproxy' AS `@@version`,'10.11.0-MariaDB-shardproxy' AS `VERSION()`,1048576 AS `@@global.max_allowed_packet`")
	err = s.Query(context.Background(), "LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE shop.t", false, &w)
	if sqlCode(err) != 4166 { // the session's client did not offer CLIENT_LOCAL_FILES
		t.Errorf("LOAD DATA LOCAL INFILE: %v, want 4166", err)
	}
	wantLog(t, be)
}
