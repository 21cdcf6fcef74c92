package integration

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// testSslStatus: SHOW STATUS LIKE 'Ssl_%' (and SHOW SESSION STATUS) report the client's own
// TLS session with the proxy, not the backend connection's (plain TCP here).
func testSslStatus(t *testing.T, e *env) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSignedCert(t) // ECDSA P-256
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, b := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := dbMap{Logical: "ssldb", Physical: "ssldb"}
	cfg := e.config(t, m)
	cfg.Server["tls_cert"], cfg.Server["tls_key"] = certFile, keyFile
	p := startProxy(t, cfg)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	register := func(c *tls.Config) string {
		name := fmt.Sprintf("sslstatus-%d", time.Now().UnixNano())
		c.RootCAs, c.ServerName = roots, "127.0.0.1"
		if err := mysql.RegisterTLSConfig(name, c); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mysql.DeregisterTLSConfig(name) })
		return name
	}
	tls12 := register(&tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}})
	tls13 := register(&tls.Config{MinVersion: tls.VersionTLS13})

	status := func(t *testing.T, params, stmt string) map[string]string {
		t.Helper()
		db := p.open(t, appUser, appPass, m.Logical, params)
		out := map[string]string{}
		for _, row := range query(t, db, stmt).Rows {
			out[text(row[0])] = text(row[1])
		}
		return out
	}
	for _, tc := range []struct {
		name, params, stmt string
		cipher, version    string
	}{
		{"TLS12", "tls=" + tls12, "SHOW STATUS LIKE 'Ssl_%'", "ECDHE-ECDSA-AES256-GCM-SHA384", "TLSv1.2"},
		{"TLS12Session", "tls=" + tls12, "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_cipher', 'Ssl_version')", "ECDHE-ECDSA-AES256-GCM-SHA384", "TLSv1.2"},
		{"TLS13", "tls=" + tls13, "SHOW STATUS LIKE 'ssl_%'", "", "TLSv1.3"},
		{"Plain", "tls=false", "SHOW STATUS LIKE 'Ssl_%'", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := status(t, tc.params, tc.stmt)
			if got["Ssl_version"] != tc.version {
				t.Errorf("Ssl_version %q, want %q", got["Ssl_version"], tc.version)
			}
			switch {
			case tc.name == "TLS13":
				// Go picks AES-128-GCM, AES-256-GCM or ChaCha20 by hardware; all TLS 1.3 suites
				// have the same name in OpenSSL and Go.
				if c := got["Ssl_cipher"]; c != "TLS_AES_128_GCM_SHA256" && c != "TLS_AES_256_GCM_SHA384" && c != "TLS_CHACHA20_POLY1305_SHA256" {
					t.Errorf("Ssl_cipher %q, want a TLS 1.3 suite", c)
				}
			case got["Ssl_cipher"] != tc.cipher:
				t.Errorf("Ssl_cipher %q, want %q", got["Ssl_cipher"], tc.cipher)
			}
		})
	}
}
