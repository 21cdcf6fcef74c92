package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// testAuth logs in with both password plugins and checks the login failures.
func testAuth(t *testing.T, e *env) {
	main, second := dbMap{Logical: "authdb", Physical: "authdb"}, dbMap{Logical: "authother", Physical: "authother_phys"}

	t.Run("Native", func(t *testing.T) {
		p := startProxy(t, e.config(t, main, second))
		db := p.open(t, appUser, appPass, main.Logical)
		if v := queryString(t, db, "SELECT 'native ok'"); v != "native ok" {
			t.Errorf("got %q", v)
		}
		c := connectRaw(t, p.Addr, appUser, appPass, main.Logical)
		if c.Plugin != "mysql_native_password" {
			t.Errorf("native user ended with plugin %s", c.Plugin)
		}
	})

	t.Run("CachingSha2", func(t *testing.T) {
		// go-sql-driver's first login does a full authentication; over plain TCP it fetches
		// the proxy's RSA public key and sends the password encrypted.
		p := startProxy(t, e.config(t, main, second))
		db := p.open(t, sha2User, sha2Pass, main.Logical)
		if v := queryString(t, db, "SELECT 'sha2 ok'"); v != "sha2 ok" {
			t.Errorf("got %q", v)
		}
		// The next login takes the fast path: fast_auth_success (0x01 0x03).
		c := connectRaw(t, p.Addr, sha2User, sha2Pass, main.Logical)
		if c.Plugin != "caching_sha2_password" || !bytes.Equal(c.AuthMore, []byte{0x01, 0x03}) {
			t.Errorf("second login: plugin %s, AuthMoreData % x; want caching_sha2_password and fast_auth_success 01 03", c.Plugin, c.AuthMore)
		}
		for range 3 { // and go-sql-driver's too
			fresh := p.open(t, sha2User, sha2Pass, second.Logical)
			if err := fresh.Ping(); err != nil {
				t.Fatalf("fast-path login: %v", err)
			}
		}
		// A wrong password on the fast path.
		_, err := p.open(t, sha2User, "wrong", main.Logical).Exec("SELECT 1")
		wantError(t, err, 1045, "28000")
	})

	t.Run("CachingSha2CleartextOverLoopback", func(t *testing.T) {
		// A fresh proxy has nothing cached: full authentication, password in clear, which
		// the proxy accepts over loopback only.
		p := startProxy(t, e.config(t, main, second))
		c := connectRaw(t, p.Addr, sha2User, sha2Pass, "")
		if !bytes.Equal(c.AuthMore, []byte{0x01, 0x04}) {
			t.Errorf("first login: AuthMoreData % x, want perform_full_authentication 01 04", c.AuthMore)
		}
		if err := c.ping(); err != nil {
			t.Errorf("ping after full authentication: %v", err)
		}
	})

	t.Run("Failures", func(t *testing.T) {
		p := startProxy(t, e.config(t, main, second))
		for _, tc := range []struct {
			name, user, pass, db string
			code                 uint16
			state                string
			msg                  string
		}{
			{"NativeWrongPassword", appUser, "nope", main.Logical, 1045, "28000", "Access denied for user 'app'@'127.0.0.1' (using password: YES)"},
			{"NativeNoPassword", appUser, "", main.Logical, 1045, "28000", "Access denied for user 'app'@'127.0.0.1' (using password: NO)"},
			{"UnknownUser", "nobody", "x", main.Logical, 1045, "28000", "Access denied for user 'nobody'"},
			{"Sha2WrongPassword", sha2User, "nope", main.Logical, 1045, "28000", "Access denied for user 'sha2user'"},
			{"ForbiddenDatabase", appUser, appPass, second.Logical, 1044, "42000", "Access denied for user 'app' to database 'authother'"},
			{"UnknownDatabase", appUser, appPass, "nosuchdb", 1049, "42000", "Unknown database 'nosuchdb'"},
			{"PhysicalNameIsNotLogical", sha2User, sha2Pass, second.Physical, 1049, "42000", "Unknown database 'authother_phys'"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := p.open(t, tc.user, tc.pass, tc.db).Ping()
				wantError(t, err, tc.code, tc.state)
				if err != nil && !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("message %q does not contain %q", err, tc.msg)
				}
			})
		}
		// The proxy still serves everyone else.
		if err := p.open(t, appUser, appPass, main.Logical).Ping(); err != nil {
			t.Errorf("login after the failures: %v", err)
		}
	})
}

// testErrors checks the errors the proxy produces and relays: codes, SQLSTATEs, and that
// the connection goes on working after each.
func testErrors(t *testing.T, e *env) {
	m, other := dbMap{Logical: "errdb", Physical: "errdb_phys"}, dbMap{Logical: "errother", Physical: "errother"}
	p := startProxy(t, e.config(t, m, other))
	const ddl = "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(5) NOT NULL, n INT)"
	mustExec(t, e.direct(t, m.Physical), ddl, "INSERT INTO t VALUES (1, 'one', 1)")
	e.rootExec(t, "CREATE DATABASE IF NOT EXISTS errdb_direct")
	direct := e.direct(t, "errdb_direct")
	mustExec(t, direct, ddl, "INSERT INTO t VALUES (1, 'one', 1)")

	for _, mode := range driverModes {
		t.Run(mode.name, func(t *testing.T) {
			db := p.open(t, appUser, appPass, m.Logical, mode.params...)
			conn, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			dconn, err := direct.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer dconn.Close()
			for _, tc := range []struct {
				name  string
				sql   string
				args  []any
				code  uint16
				state string
				same  bool // MariaDB answers the same directly
			}{
				{"Syntax", "SELEC 1", nil, 1064, "42000", true},
				{"SyntaxWithArgs", "SELECT * FROM t WHERE id = = ?", []any{1}, 1064, "42000", true},
				{"UnknownTable", "SELECT * FROM nosuch", nil, 1146, "42S02", true},
				{"UnknownTableWithArgs", "SELECT * FROM nosuch WHERE id = ?", []any{1}, 1146, "42S02", true},
				{"UnknownColumn", "SELECT nosuch FROM t", nil, 1054, "42S22", true},
				{"DuplicateKey", "INSERT INTO t VALUES (1, 'dup', 0)", nil, 1062, "23000", true},
				{"DuplicateKeyWithArgs", "INSERT INTO t VALUES (?, ?, ?)", []any{1, "dup", 0}, 1062, "23000", true},
				{"NotNull", "INSERT INTO t (id, v) VALUES (?, ?)", []any{2, nil}, 1048, "23000", true},
				{"DataTooLong", "INSERT INTO t (id, v) VALUES (3, 'too long')", nil, 1406, "22001", true},
				{"DivisionByZero", "INSERT INTO t (id, v, n) VALUES (4, 'x', 1/0)", nil, 1365, "22012", true},
				{"OutOfRange", "INSERT INTO t (id, v, n) VALUES (5, 'x', 99999999999)", nil, 1264, "22003", true},
				{"EmptyQuery", "   ", nil, 1065, "42000", true},
				{"UseUnknownDatabase", "USE nosuchdb", nil, 1049, "42000", false},
				{"UseForbiddenDatabase", "USE errother", nil, 1044, "42000", false},
				{"QualifiedForbiddenDatabase", "SELECT * FROM errother.t", nil, 1044, "42000", false},
				{"QualifiedPhysicalName", "SELECT * FROM errother_phys.t", nil, 1049, "42000", false},
				{"KillUnknown", "KILL 4000000000", nil, 1094, "HY000", false},
				{"KillQueryUnknown", "KILL QUERY 4000000000", nil, 1094, "HY000", false},
				{"CreateDatabase", "CREATE DATABASE x", nil, 1235, "42000", false},
				{"SetGlobal", "SET GLOBAL max_connections = 10", nil, 1235, "42000", false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					_, err := conn.ExecContext(context.Background(), tc.sql, tc.args...)
					wantError(t, err, tc.code, tc.state)
					if tc.same {
						_, derr := dconn.ExecContext(context.Background(), tc.sql, tc.args...)
						if !sameError(err, derr) {
							t.Errorf("through the proxy %v, directly %v", err, derr)
						}
					}
					if v := queryString(t, conn, "SELECT COUNT(*) FROM t"); v != "1" {
						t.Errorf("the next statement on the same connection: COUNT(*) = %s", v)
					}
				})
			}
		})
	}

	t.Run("NoDatabaseSelected", func(t *testing.T) {
		db := p.open(t, appUser, appPass, "")
		_, err := db.Exec("SELECT * FROM t")
		wantError(t, err, 1046, "3D000")
		if v := queryString(t, db, "SELECT COUNT(*) FROM errdb.t"); v != "1" {
			t.Errorf("qualified name without a current database: %s", v)
		}
	})

	t.Run("PrepareErrors", func(t *testing.T) {
		db := p.open(t, appUser, appPass, m.Logical)
		for _, tc := range []struct {
			sql   string
			code  uint16
			state string
		}{
			{"SELECT * FROM nosuch WHERE id = ?", 1146, "42S02"},
			{"SELEC ?", 1064, "42000"},
			{"SELECT 1; SELECT 2", 1064, "42000"},
		} {
			_, err := db.Prepare(tc.sql)
			wantError(t, err, tc.code, tc.state)
		}
	})

	t.Run("ErrorInsideTransaction", func(t *testing.T) {
		db := p.open(t, appUser, appPass, m.Logical)
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, tx, "INSERT INTO t VALUES (10, 'ten', 10)")
		_, err = tx.Exec("INSERT INTO t VALUES (10, 'dup', 10)")
		wantError(t, err, 1062, "23000")
		mustExec(t, tx, "INSERT INTO t VALUES (11, 'elf', 11)")
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if v := queryString(t, e.direct(t, m.Physical), "SELECT GROUP_CONCAT(id ORDER BY id) FROM t WHERE id >= 10"); v != "10,11" {
			t.Errorf("committed rows %s, want 10,11", v)
		}
		mustExec(t, db, "DELETE FROM t WHERE id >= 10")
	})

	t.Run("UnknownCommand", func(t *testing.T) {
		c := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
		for _, cmd := range []byte{0x00, 0x1d, 0x20, 0x7f, 0xff} {
			if err := c.command(cmd, []byte("x")); err != nil {
				t.Fatal(err)
			}
			_, err := c.readResult()
			var se *serverError
			if !errors.As(err, &se) || se.Code != 1047 {
				t.Errorf("command %#x: %v, want error 1047", cmd, err)
			}
			if err := c.ping(); err != nil {
				t.Fatalf("ping after command %#x: %v", cmd, err)
			}
		}
	})
}

// testPacketTooLarge sends packets above the proxy's max_allowed_packet: ER_NET_PACKET_TOO_LARGE
// and a closed connection, as MySQL does, while other connections go on.
func testPacketTooLarge(t *testing.T, e *env) {
	m := dbMap{Logical: "pkt", Physical: "pkt"}
	cfg := e.config(t, m)
	cfg.Server["max_allowed_packet"] = "1MB"
	p := startProxy(t, cfg)
	bystander := p.open(t, appUser, appPass, m.Logical)
	bconn, err := bystander.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer bconn.Close()
	mustExec(t, bconn, "CREATE TABLE IF NOT EXISTS pk (id INT PRIMARY KEY, b LONGBLOB)")

	bigQuery := "SELECT LENGTH('" + strings.Repeat("x", 2<<20) + "')"
	t.Run("Raw", func(t *testing.T) {
		c := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
		written := make(chan error, 1)
		go func() { written <- c.command(comQuery, []byte(bigQuery)) }()
		_, err := c.readResult()
		var se *serverError
		if !errors.As(err, &se) || se.Code != 1153 || se.State != "08S01" {
			t.Errorf("2 MiB query with max_allowed_packet 1MB: %v, want error 1153 (08S01)", err)
		}
		if err := c.closed(10 * time.Second); err != nil {
			t.Errorf("after 1153: %v", err)
		}
		_ = c.nc.Close()
		<-written // the write fails or completes once the proxy has closed
	})

	t.Run("GoSQLDriver", func(t *testing.T) {
		for _, mode := range driverModes {
			db := p.open(t, appUser, appPass, m.Logical, mode.params...)
			db.SetMaxIdleConns(0)
			_, err := db.Exec("INSERT INTO pk VALUES (?, ?)", 1, bytes.Repeat([]byte{0xff}, 2<<20))
			if err == nil {
				t.Errorf("%s: a 2 MiB INSERT succeeded through a proxy with max_allowed_packet 1MB", mode.name)
			}
			var me *mysql.MySQLError
			if errors.As(err, &me) && me.Number != 1153 {
				t.Errorf("%s: got %v, want 1153", mode.name, err)
			}
			t.Logf("%s: go-sql-driver reports %v", mode.name, err)
		}
	})

	t.Run("JustBelowTheLimit", func(t *testing.T) {
		db := p.open(t, appUser, appPass, m.Logical)
		n := 1<<20 - 200
		if v := queryString(t, db, "SELECT LENGTH('"+strings.Repeat("y", n)+"')"); v != fmt.Sprint(n) {
			t.Errorf("LENGTH = %s, want %d", v, n)
		}
	})

	// Connections that were open all along, and new ones, still work.
	if v := queryString(t, bconn, "SELECT 'still here'"); v != "still here" {
		t.Errorf("bystander: %q", v)
	}
	if err := p.open(t, appUser, appPass, m.Logical).Ping(); err != nil {
		t.Errorf("new connection: %v", err)
	}
}

// testTLS enables TLS with a certificate made here and connects with verification, with
// skip-verify, and without TLS; caching_sha2_password's full authentication then sends the
// password in clear inside TLS.
func testTLS(t *testing.T, e *env) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSignedCert(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	m := dbMap{Logical: "tlsdb", Physical: "tlsdb"}
	cfg := e.config(t, m)
	cfg.Server["tls_cert"], cfg.Server["tls_key"] = certFile, keyFile
	p := startProxy(t, cfg)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	var handshakes atomic.Int32
	name := fmt.Sprintf("shardproxy-it-%d", time.Now().UnixNano())
	err := mysql.RegisterTLSConfig(name, &tls.Config{
		RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			handshakes.Add(1)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mysql.DeregisterTLSConfig(name) })

	t.Run("ClientHelloInTheSamePacketAsSSLRequest", func(t *testing.T) {
		// Regression: the proxy must not lose a ClientHello that arrived in the same read as
		// the SSLRequest (go-sql-driver and libmariadb send it right after).
		c := dialRaw(t, p.Addr)
		if err := c.readGreeting(); err != nil {
			t.Fatal(err)
		}
		// SSLRequest (sequence 1) and the ClientHello in one write, as a fast client's
		// packets often arrive.
		req := binary.LittleEndian.AppendUint32(nil, rawCaps|capSSL)
		req = binary.LittleEndian.AppendUint32(req, 16<<20)
		req = append(req, 45)
		req = append(req, make([]byte, 23)...)
		prefix := append([]byte{byte(len(req)), 0, 0, 1}, req...)
		tc := tls.Client(&prefixConn{Conn: c.nc, prefix: prefix}, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // self-signed test certificate
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		c.nc, c.br, c.seq = tc, bufio.NewReader(tc), 2
		if err := c.login(appUser, appPass, m.Logical, capSSL); err != nil {
			t.Fatalf("login over TLS: %v", err)
		}
		if err := c.ping(); err != nil {
			t.Fatal(err)
		}
	})

	for _, tc := range []struct {
		name, user, pass, tls string
	}{
		{"VerifiedNative", appUser, appPass, name},
		{"VerifiedSha2FullAuth", sha2User, sha2Pass, name}, // first sha2 login of this proxy
		{"VerifiedSha2FastPath", sha2User, sha2Pass, name},
		{"SkipVerify", appUser, appPass, "skip-verify"},
		{"Plain", appUser, appPass, "false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := handshakes.Load()
			db := p.open(t, tc.user, tc.pass, m.Logical, "tls="+tc.tls)
			if v := queryString(t, db, "SELECT 'over tls'"); v != "over tls" {
				t.Errorf("got %q", v)
			}
			if tc.tls == name && handshakes.Load() == before {
				t.Errorf("no verified TLS handshake happened")
			}
		})
	}
	t.Run("MariaDBClient", func(t *testing.T) {
		mariadb := cli{path: requireTool(t, "/usr/bin/mariadb", "mariadb-client"), addr: p.Addr}
		for _, u := range []struct{ user, pass string }{{appUser, appPass}, {sha2User, sha2Pass}} {
			out := mariadb.mustRun(t, "", "--ssl", "--ssl-ca="+certFile, "-u", u.user, "-p"+u.pass, m.Logical, "-e", "status")
			if !strings.Contains(out, "Cipher in use is") {
				t.Errorf("%s: mariadb status shows no TLS cipher:\n%s", u.user, out)
			}
		}
	})

	t.Run("WrongPasswordOverTLS", func(t *testing.T) {
		err := p.open(t, sha2User, "wrong", m.Logical, "tls="+name).Ping()
		wantError(t, err, 1045, "28000")
	})
	t.Run("Sha2FullAuthOverTLSFreshProxy", func(t *testing.T) {
		fresh := startProxy(t, cfg)
		db := openDB(t, fresh.dsn(sha2User, sha2Pass, m.Logical, "tls=skip-verify"))
		if err := db.Ping(); err != nil {
			t.Fatalf("sha2 full authentication over TLS: %v", err)
		}
	})
}

// prefixConn sends prefix in the same write as the first data written.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Write(b []byte) (int, error) {
	if c.prefix == nil {
		return c.Conn.Write(b)
	}
	p := append(c.prefix, b...)
	c.prefix = nil
	if _, err := c.Conn.Write(p); err != nil {
		return 0, err
	}
	return len(b), nil
}

// selfSignedCert returns a PEM certificate for 127.0.0.1 and localhost, and its key.
func selfSignedCert(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "shardproxy integration test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
