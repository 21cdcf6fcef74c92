package etcdtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Secure is an embedded etcd member that serves clients over mutual TLS only and has
// authentication enabled, as a production etcd does: a client needs the CA, a client
// certificate signed by it, and a user with its password.
type Secure struct {
	Endpoint string // "127.0.0.1:PORT" (TLS)
	// PEM files in a temporary directory: the CA that signed the server's and the
	// client's certificates, and the client's certificate and key.
	CAFile, CertFile, KeyFile string
	// User and Password of the account with read-write access to every key.
	User, Password string
}

// StartSecure starts a secure member; t.Cleanup stops it.
func StartSecure(t testing.TB) *Secure {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newCA(t)
	s := &Secure{
		CAFile: writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw),
		User:   "root", Password: "etcdtest-secret",
	}
	serverCert, serverKey := issue(t, ca, caKey, "etcd", x509.ExtKeyUsageServerAuth)
	serverCertFile := writePEM(t, dir, "server.pem", "CERTIFICATE", serverCert)
	serverKeyFile := writePEM(t, dir, "server-key.pem", "EC PRIVATE KEY", serverKey)
	clientCert, clientKey := issue(t, ca, caKey, "shardproxy", x509.ExtKeyUsageClientAuth)
	s.CertFile = writePEM(t, dir, "client.pem", "CERTIFICATE", clientCert)
	s.KeyFile = writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", clientKey)

	client := url.URL{Scheme: "https", Host: freeAddr(t)}
	peer := url.URL{Scheme: "http", Host: freeAddr(t)}
	cfg := embed.NewConfig()
	cfg.Name = "etcdtest-secure"
	cfg.Dir = filepath.Join(dir, "data")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.TickMs, cfg.ElectionMs = 10, 100
	cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = serverCertFile, serverKeyFile
	cfg.ClientTLSInfo.TrustedCAFile = s.CAFile
	cfg.ClientTLSInfo.ClientCertAuth = true
	// The cheapest bcrypt cost etcd accepts: each authentication hashes the password, and at
	// the default cost under the race detector on a loaded machine that alone can outlast the
	// client's 3 s dial timeout (TestEtcdTLSAndAuth failed so).
	cfg.BcryptCost = 4
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("etcdtest: start secure: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatalf("etcdtest: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("etcdtest: secure etcd did not become ready within 30s")
	}
	s.Endpoint = client.Host
	s.enableAuth(t)
	return s
}

// enableAuth creates the root user (root role: every key) and turns authentication on.
func (s *Secure) enableAuth(t testing.TB) {
	t.Helper()
	tc, err := clientTLS(s.CAFile, s.CertFile, s.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint}, TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.UserAdd(ctx, s.User, s.Password); err != nil {
		t.Fatalf("etcdtest: user add: %v", err)
	}
	if _, err := cli.UserGrantRole(ctx, s.User, "root"); err != nil {
		t.Fatalf("etcdtest: grant root: %v", err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatalf("etcdtest: auth enable: %v", err)
	}
}

// newCA returns a self-signed CA certificate and its key.
func newCA(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "etcdtest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

// issue returns a certificate for 127.0.0.1 signed by the CA, and its key, both DER.
func issue(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	if cert, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey); err != nil {
		t.Fatal(err)
	}
	if key, err = x509.MarshalECPrivateKey(k); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientTLS is the TLS configuration of a client of a Secure member.
func clientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, errors.New("etcdtest: no CA certificate")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
