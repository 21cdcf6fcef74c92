package router

import "testing"

// TestCheckTextSandboxMarker: mariadb-dump's first line, /*M!999999\- enable the sandbox
// mode */, is a comment to every server (it runs from MariaDB 99.99.99 on) and passes the
// barrier; any other MariaDB executable comment is still refused.
func TestCheckTextSandboxMarker(t *testing.T) {
	for _, tc := range []struct {
		sql string
		ok  bool
	}{
		{"/*M!999999\\- enable the sandbox mode */ \n/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */", true},
		{"/*m!999999 anything */ SELECT 1", true},
		{"/*M!999999 x */ SELECT 1 /*M!100000 , (SELECT 2) */", false},
		{"SELECT 1 /*M!, (SELECT 2) */", false},
		{"SELECT 1 /*M!99999 , (SELECT 2) */", false},
	} {
		if err := checkText(tc.sql); (err == nil) != tc.ok {
			t.Errorf("checkText(%q) = %v, want ok %v", tc.sql, err, tc.ok)
		}
	}
}
