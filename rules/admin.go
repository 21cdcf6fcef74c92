package rules

import (
	"encoding/hex"
	"fmt"
	"net"
)

// validateAdmin checks the admin section: a loopback address or TLS, well-formed token
// hashes with known roles, known open endpoints.
func validateAdmin(a AdminConfig) error {
	if (a.TLSCert == "") != (a.TLSKey == "") {
		return fmt.Errorf("%w: admin: tls_cert and tls_key go together", ErrInvalid)
	}
	if a.Listen != "" {
		host, _, err := net.SplitHostPort(a.Listen)
		if err != nil {
			return fmt.Errorf("%w: admin.listen %q: %v", ErrInvalid, a.Listen, err)
		}
		if !isLoopback(host) && a.TLSCert == "" {
			return fmt.Errorf("%w: admin.listen %q is not a loopback address: it requires tls_cert and tls_key", ErrInvalid, a.Listen)
		}
	}
	names := map[string]bool{}
	for i, t := range a.Tokens {
		if t.Name == "" {
			return fmt.Errorf("%w: admin.tokens[%d]: name is empty", ErrInvalid, i)
		}
		if names[t.Name] {
			return fmt.Errorf("%w: admin token %q: defined twice", ErrInvalid, t.Name)
		}
		names[t.Name] = true
		if t.Role != RoleRead && t.Role != RoleAdmin {
			return fmt.Errorf("%w: admin token %q: role %q: want read or admin", ErrInvalid, t.Name, t.Role)
		}
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != 32 {
			return fmt.Errorf("%w: admin token %q: sha256 is not 64 hex digits (see shardproxy hash-token)", ErrInvalid, t.Name)
		}
	}
	for _, o := range a.Open {
		switch o {
		case "metrics", "healthz", "readyz", "status":
		default:
			return fmt.Errorf("%w: admin.open %q: want metrics, healthz, readyz or status (the page at /)", ErrInvalid, o)
		}
	}
	return nil
}

// isLoopback reports whether host (an IP or "localhost") is a loopback address. An empty
// host (all interfaces) is not.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
