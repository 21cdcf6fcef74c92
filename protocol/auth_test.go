package protocol

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// selfSigned returns a throwaway certificate for 127.0.0.1 and localhost.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "shardproxy test"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Reference values: MySQL's PASSWORD() function (MySQL 5.7 manual) gives these.
func TestHashNative(t *testing.T) {
	cases := map[string]string{
		"password": "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19",
		"mypass":   "*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4",
	}
	for pw, want := range cases {
		if got := HashNative(pw); got != want {
			t.Errorf("HashNative(%q) = %s, want %s", pw, got, want)
		}
		if plugin, err := ParseHash(want); err != nil || plugin != PluginNative {
			t.Errorf("ParseHash(%s) = %q, %v", want, plugin, err)
		}
	}
	if got := HashNative("password"); got != strings.ToUpper(got) {
		t.Errorf("hash %s is not upper case", got)
	}
}

func TestHashSha2(t *testing.T) {
	h1, err := HashSha2(password)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashSha2(password)
	if h1 == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	if !strings.HasPrefix(h1, "pbkdf2-sha256$10000$") || strings.Count(h1, "$") != 3 {
		t.Errorf("hash %q", h1)
	}
	if plugin, err := ParseHash(h1); err != nil || plugin != PluginCachingSha2 {
		t.Errorf("ParseHash = %q, %v", plugin, err)
	}
	v, _ := parseVerifier(h1)
	if !v.checkPlain([]byte(password)) || v.checkPlain([]byte("other")) {
		t.Error("checkPlain does not tell the password from another")
	}
}

func TestParseHashErrors(t *testing.T) {
	for _, h := range []string{
		"",
		"secret",
		"*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E1",   // 39 digits
		"*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E1Z",  // not hex
		"2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19AA", // no star
		"pbkdf2-sha256$",
		"pbkdf2-sha256$10000$c2FsdA",
		"pbkdf2-sha256$x$c2FsdA$a2V5",
		"pbkdf2-sha256$0$c2FsdA$a2V5",
		"pbkdf2-sha256$10$!!$a2V5",
		"pbkdf2-sha256$10$c2FsdA$a2V5=",
		"pbkdf2-sha256$10$c2FsdA$a2V5$extra",
	} {
		if _, err := ParseHash(h); !errors.Is(err, ErrBadHash) {
			t.Errorf("ParseHash(%q) = %v, want ErrBadHash", h, err)
		}
	}
}

func TestSha2CacheKeyedByHash(t *testing.T) {
	var c sha2Cache
	if _, ok := c.get("u", "h1"); ok {
		t.Fatal("empty cache has an entry")
	}
	c.put("u", "h1", []byte("pw"))
	if _, ok := c.get("u", "h1"); !ok {
		t.Error("entry missing after put")
	}
	if _, ok := c.get("u", "h2"); ok {
		t.Error("a changed hash (new password) still hits the cache")
	}
	if _, ok := c.get("v", "h1"); ok {
		t.Error("another user hits the cache")
	}
}

// sha2Switch logs in as the sha2 user with a mysql_native_password first response, reads
// the AuthSwitchRequest (checked byte for byte) and answers with the caching_sha2 scramble
// of pw. It returns the server's next packet.
func sha2Switch(t *testing.T, c *rawClient, pw string) []byte {
	t.Helper()
	c.send(c.nativeResponse(sha2User, pw))
	sw := c.readFrame()
	// AuthSwitchRequest: 0xfe, plugin name, NUL, plugin data (the same 20-byte nonce), NUL.
	want := frameOf(2, append(append([]byte("\xfecaching_sha2_password\x00"), c.scramble...), 0))
	if !bytes.Equal(sw, want) {
		t.Fatalf("auth switch\n% x\nwant\n% x", sw, want)
	}
	c.write(mysql.CalcCachingSha2Password(c.scramble, []byte(pw)))
	return c.readFrame()
}

// TestSha2FullThenFast: the first login of a caching_sha2_password user needs full
// authentication (0x01 0x04), here with the password in clear over loopback; the second
// takes the fast path (0x01 0x03) and needs no password exchange.
func TestSha2FullThenFast(t *testing.T) {
	ts := startServer(t, Options{})
	c := dialRaw(t, ts.addr)
	if got := sha2Switch(t, c, password); !bytes.Equal(got, unhex(t, "02000004 0104")) {
		t.Fatalf("first login: % x, want perform_full_authentication 02 00 00 04 01 04", got)
	}
	c.write([]byte(password + "\x00"))
	if got, want := c.readFrame(), unhex(t, "07000006 00 00 00 0200 0000"); !bytes.Equal(got, want) {
		t.Fatalf("after full authentication % x, want OK % x", got, want)
	}
	c.ping()

	c2 := dialRaw(t, ts.addr)
	if got := sha2Switch(t, c2, password); !bytes.Equal(got, unhex(t, "02000004 0103")) {
		t.Fatalf("second login: % x, want fast_auth_success 02 00 00 04 01 03", got)
	}
	if got, want := c2.readFrame(), unhex(t, "07000005 00 00 00 0200 0000"); !bytes.Equal(got, want) {
		t.Fatalf("after fast authentication % x, want OK % x", got, want)
	}
	c2.ping()

	// A wrong password on the fast path is refused without a second chance.
	c3 := dialRaw(t, ts.addr)
	if got := sha2Switch(t, c3, "wrong"); !bytes.HasPrefix(got[4:], unhex(t, "ff 1504 23 3238303030")) {
		t.Fatalf("fast path with a wrong password: % x, want ERR 1045 (28000)", got)
	}
	c3.expectClosed()
}

// TestSha2DirectPlugin: a client that starts with caching_sha2_password itself (MySQL 8
// clients) needs no switch.
func TestSha2DirectPlugin(t *testing.T) {
	ts := startServer(t, Options{})
	c := dialRaw(t, ts.addr)
	r := c.nativeResponse(sha2User, password)
	r.plugin, r.auth = PluginCachingSha2, mysql.CalcCachingSha2Password(c.scramble, []byte(password))
	c.send(r)
	if got := c.readFrame(); !bytes.Equal(got, unhex(t, "02000002 0104")) {
		t.Fatalf("% x, want perform_full_authentication", got)
	}
	c.write([]byte(password + "\x00"))
	c.expectOK()

	// An empty password is refused at once.
	c2 := dialRaw(t, ts.addr)
	r = c2.nativeResponse(sha2User, "")
	r.plugin, r.auth = PluginCachingSha2, nil
	c2.send(r)
	if msg := c2.expectErr(1045, "28000"); !strings.HasSuffix(msg, "(using password: NO)") {
		t.Errorf("message %q", msg)
	}
}

func TestNativeSwitch(t *testing.T) {
	ts := startServer(t, Options{})
	c := dialRaw(t, ts.addr)
	r := c.nativeResponse(nativeUser, password)
	r.plugin, r.auth = PluginCachingSha2, mysql.CalcCachingSha2Password(c.scramble, []byte(password))
	c.send(r)
	want := frameOf(2, append(append([]byte("\xfemysql_native_password\x00"), c.scramble...), 0))
	if got := c.readFrame(); !bytes.Equal(got, want) {
		t.Fatalf("auth switch\n% x\nwant\n% x", got, want)
	}
	c.write(mysql.CalcNativePassword(c.scramble, []byte(password)))
	if got, want := c.readFrame(), unhex(t, "07000004 00 00 00 0200 0000"); !bytes.Equal(got, want) {
		t.Fatalf("% x, want OK % x", got, want)
	}
}

func TestSha2WrongPasswordFullAuth(t *testing.T) {
	ts := startServer(t, Options{})
	c := dialRaw(t, ts.addr)
	sha2Switch(t, c, "wrong")
	c.write([]byte("wrong\x00"))
	c.expectErr(1045, "28000")
	c.expectClosed()
	if _, ok := ts.sha2.get(sha2User, mustLookup(t, ts, sha2User)); ok {
		t.Error("a failed login filled the cache")
	}
}

func mustLookup(t *testing.T, ts *testServer, user string) string {
	t.Helper()
	cred, ok := ts.users.LookupUser(user)
	if !ok {
		t.Fatalf("no user %s", user)
	}
	return cred.Hash
}

// TestSha2RSA: a client without TLS asks for the server's public key (0x02), gets it as PEM
// after 0x01, and sends the password RSA-OAEP encrypted (go-mysql's reference helper).
func TestSha2RSA(t *testing.T) {
	ts := startServer(t, Options{})

	// Garbage instead of the encrypted password (first, while the cache is empty).
	c0 := dialRaw(t, ts.addr)
	sha2Switch(t, c0, "x")
	c0.write([]byte{0x02})
	c0.read()
	c0.write(bytes.Repeat([]byte{1}, 256))
	c0.expectErr(1045, "28000")

	c := dialRaw(t, ts.addr)
	if got := sha2Switch(t, c, password); !bytes.Equal(got, unhex(t, "02000004 0104")) {
		t.Fatalf("% x, want perform_full_authentication", got)
	}
	c.write([]byte{0x02})
	p := c.read()
	if len(p) < 2 || p[0] != 0x01 {
		t.Fatalf("public key answer % x", p[:min(len(p), 16)])
	}
	block, _ := pem.Decode(p[1:])
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("no PEM public key in %q", p[1:])
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := mysql.EncryptPassword(password, c.scramble, pub.(*rsa.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	c.write(enc)
	c.expectOK()
	if _, ok := ts.sha2.get(sha2User, mustLookup(t, ts, sha2User)); !ok {
		t.Error("the cache was not filled after full authentication")
	}

}

// TestSha2CleartextRefusedOffLoopback: without TLS and off loopback, a password sent in
// clear is refused (this server end sits on a net.Pipe, whose address is not loopback).
func TestSha2CleartextRefusedOffLoopback(t *testing.T) {
	sha2Hash, err := HashSha2(password)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(Options{}, users{sha2User: sha2Hash}, newStubHandler())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	client, server := net.Pipe()
	s.start(server)
	c := newRaw(t, client)
	if got := sha2Switch(t, c, password); !bytes.Equal(got, unhex(t, "02000004 0104")) {
		t.Fatalf("% x, want perform_full_authentication", got)
	}
	c.write([]byte(password + "\x00"))
	msg := c.expectErr(1045, "28000")
	if !strings.Contains(msg, "secure connection") {
		t.Errorf("message %q", msg)
	}
}
