package rules_test

import (
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/rules"
)

func TestBuildAdmin(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	cases := []struct {
		name  string
		admin rules.AdminConfig
		frag  string // "" = valid
	}{
		{"off", rules.AdminConfig{}, ""},
		{"loopback", rules.AdminConfig{Listen: "127.0.0.1:9090"}, ""},
		{"localhost", rules.AdminConfig{Listen: "localhost:9090"}, ""},
		{"ipv6 loopback", rules.AdminConfig{Listen: "[::1]:9090"}, ""},
		{"public with TLS", rules.AdminConfig{Listen: "0.0.0.0:9090", TLSCert: "c", TLSKey: "k"}, ""},
		{"public without TLS", rules.AdminConfig{Listen: "0.0.0.0:9090"}, "not a loopback address"},
		{"all interfaces without TLS", rules.AdminConfig{Listen: ":9090"}, "not a loopback address"},
		{"bad listen", rules.AdminConfig{Listen: "9090"}, "admin.listen"},
		{"cert without key", rules.AdminConfig{TLSCert: "c"}, "tls_cert and tls_key"},
		{"tokens", rules.AdminConfig{Tokens: []rules.AdminToken{{Name: "a", Role: "read", SHA256: hash}, {Name: "b", Role: "admin", SHA256: hash}}}, ""},
		{"bad role", rules.AdminConfig{Tokens: []rules.AdminToken{{Name: "a", Role: "root", SHA256: hash}}}, `role "root"`},
		{"plain token", rules.AdminConfig{Tokens: []rules.AdminToken{{Name: "a", Role: "read", SHA256: "secret"}}}, "64 hex digits"},
		{"duplicate token", rules.AdminConfig{Tokens: []rules.AdminToken{{Name: "a", Role: "read", SHA256: hash}, {Name: "a", Role: "read", SHA256: hash}}}, "defined twice"},
		{"unnamed token", rules.AdminConfig{Tokens: []rules.AdminToken{{Role: "read", SHA256: hash}}}, "name is empty"},
		{"open", rules.AdminConfig{Open: []string{"metrics", "healthz", "readyz", "status"}}, ""},
		{"open unknown", rules.AdminConfig{Open: []string{"sessions"}}, `admin.open "sessions"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base()
			cfg.Admin = c.admin
			s, err := rules.Build(cfg)
			if c.frag == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s.Admin().Listen != c.admin.Listen || len(s.Admin().Tokens) != len(c.admin.Tokens) {
					t.Errorf("Admin() = %+v", s.Admin())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.frag) {
				t.Fatalf("err = %v, want it to contain %q", err, c.frag)
			}
		})
	}
}
