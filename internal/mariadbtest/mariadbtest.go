// Package mariadbtest starts real MariaDB servers in containers for tests.
//
// The image is built locally from Debian's packages by scripts/mariadb-image.sh (no image
// registry is reachable here); SHARDPROXY_MARIADB_IMAGE names a prebuilt one. Containers run
// with their data directory on tmpfs and are removed by t.Cleanup (the testcontainers reaper
// is disabled). Without Docker a test is skipped with a loud message, except under CI=true,
// where it fails: the suite must run in CI.
package mariadbtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // driver for Server.DB
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// RootPassword is the root password of every test server.
const RootPassword = "rootpw"

// Server is one running MariaDB container.
type Server struct {
	Host     string // address reachable from the host
	Port     int
	User     string // root
	Password string
	ctr      *testcontainers.DockerContainer
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// BridgeAddr is the server's address on Docker's bridge network (the container's IP and
// 3306), or "" when it has none or it does not answer from here. Unlike Addr it does not
// pass through Docker's userland port forwarding, so a close by the server reaches the
// client at once (through the forwarding it arrives a copy loop later, at times 100 ms).
func (s *Server) BridgeAddr(ctx context.Context) string {
	ip, err := s.ctr.ContainerIP(ctx)
	if err != nil || ip == "" {
		return ""
	}
	addr := net.JoinHostPort(ip, "3306")
	c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return ""
	}
	_ = c.Close()
	return addr
}

// DSN is a go-sql-driver DSN for root on db.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s?multiStatements=true&parseTime=true", s.User, s.Password, s.Addr(), db)
}

// DB opens a database/sql handle as root on db; closed by t.Cleanup.
func (s *Server) DB(t testing.TB, db string) *sql.DB {
	t.Helper()
	h, err := sql.Open("mysql", s.DSN(db))
	if err != nil {
		t.Fatalf("open %s: %v", s.Addr(), err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// Exec runs statements as root, failing the test on error.
func (s *Server) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	h := s.DB(t, "")
	for _, q := range stmts {
		if _, err := h.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %q: %v", s.Addr(), q, err)
		}
	}
}

// Stop stops the container (the server goes away; the data stays until the test ends).
func (s *Server) Stop(ctx context.Context) error {
	d := 5 * time.Second
	return s.ctr.Stop(ctx, &d)
}

// Option adjusts a server before it starts.
type Option func(*config)

type config struct {
	databases   []string
	args        []string
	restartable bool
	network     string
	aliases     []string
}

// WithDatabases creates databases at start.
func WithDatabases(names ...string) Option {
	return func(c *config) { c.databases = append(c.databases, names...) }
}

// WithServerArgs passes options to mariadbd.
func WithServerArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// WithNetwork attaches the server to the Docker network name (created by the caller) under
// aliases, so that other containers on it reach it as alias:3306.
func WithNetwork(name string, aliases ...string) Option {
	return func(c *config) { c.network, c.aliases = name, aliases }
}

// ContainerID is the Docker id of the server's container (for docker kill, pause, network
// disconnect).
func (s *Server) ContainerID() string { return s.ctr.GetContainerID() }

// Restartable keeps the data directory on the container's own disk instead of tmpfs (which
// a stop wipes) and publishes the port on a fixed loopback port (Docker would pick a new one
// at each start), so that Restart keeps both the data and the address.
func Restartable() Option {
	return func(c *config) { c.restartable = true }
}

// RequireDocker skips (or, under CI, fails) the test when no Docker engine answers.
func RequireDocker(t testing.TB) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("*** DOCKER IS NOT AVAILABLE: integration tests against real MariaDB are SKIPPED (%v: %s) ***",
		err, strings.TrimSpace(string(out)))
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Image returns the local MariaDB image tag, building it if needed.
func Image(t testing.TB) string {
	t.Helper()
	if img := os.Getenv("SHARDPROXY_MARIADB_IMAGE"); img != "" {
		return img
	}
	script := filepath.Join(moduleRoot(t), "scripts", "mariadb-image.sh")
	cmd := exec.CommandContext(t.Context(), "bash", script)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("building the MariaDB image with %s: %v", script, err)
	}
	return strings.TrimSpace(string(out))
}

func moduleRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// Start starts a MariaDB server and registers its removal with t.Cleanup.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	RequireDocker(t)
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	// This machine looks like a container to testcontainers (/.dockerenv), which then dials
	// mapped ports on the default gateway; published ports are on loopback here.
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		t.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	img := Image(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	custom := []testcontainers.ContainerCustomizer{
		testcontainers.WithEnv(map[string]string{
			"MARIADB_ROOT_PASSWORD": RootPassword,
			"MARIADB_DATABASE":      strings.Join(cfg.databases, ","),
		}),
		testcontainers.WithCmdArgs(cfg.args...),
		testcontainers.WithExposedPorts("3306/tcp"),
		testcontainers.WithLabels(map[string]string{"shardproxy.test": "1"}),
		// WithWaitStrategy alone caps the wait at 60 s, which a loaded machine exceeded
		// (MariaDB's start-up took longer than a minute at load average 20+).
		testcontainers.WithWaitStrategyAndDeadline(2*time.Minute,
			wait.ForLog("ready for connections").WithStartupTimeout(2*time.Minute),
			wait.ForListeningPort("3306/tcp").WithStartupTimeout(2*time.Minute),
		),
	}
	if cfg.network != "" {
		custom = append(custom, tcnetwork.WithNetworkName(cfg.aliases, cfg.network))
	}
	if cfg.restartable {
		custom = append(custom, fixedPort(t))
	} else {
		custom = append(custom, testcontainers.WithTmpfs(map[string]string{"/var/lib/mysql": "rw"}))
	}
	ctr, err := testcontainers.Run(ctx, img, custom...)
	if ctr != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = ctr.Terminate(ctx)
		})
	}
	if err != nil {
		t.Fatalf("starting MariaDB (%s): %v", img, err)
	}
	host, err := ctr.Host(ctx)
	if err != nil {
		t.Fatal(err)
	}
	port, err := ctr.MappedPort(ctx, "3306/tcp")
	if err != nil {
		t.Fatal(err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	s := &Server{Host: host, Port: int(port.Num()), User: "root", Password: RootPassword, ctr: ctr}
	waitReady(t, s)
	return s
}

// fixedPort publishes 3306 on a loopback port that is free now.
func fixedPort(t testing.TB) testcontainers.ContainerCustomizer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.PortBindings = network.PortMap{network.MustParsePort("3306/tcp"): {{
			HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: port,
		}}}
	})
}

// Restart stops the server (cleanly, within 10 s) and starts it again on the same address;
// it returns once the server accepts logins. Only a Restartable server keeps its data and
// its address. It may be called from any goroutine.
func (s *Server) Restart(ctx context.Context) error {
	d := 10 * time.Second
	if err := s.ctr.Stop(ctx, &d); err != nil {
		return fmt.Errorf("stopping %s: %w", s.Addr(), err)
	}
	if err := s.ctr.Start(ctx); err != nil {
		return fmt.Errorf("starting %s again: %w", s.Addr(), err)
	}
	port, err := s.ctr.MappedPort(ctx, "3306/tcp")
	if err != nil {
		return err
	}
	if int(port.Num()) != s.Port {
		return fmt.Errorf("%s came back on port %d", s.Addr(), port.Num())
	}
	h, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return err
	}
	defer h.Close()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = h.PingContext(pctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady pings until the server accepts a real login: the log line comes before the
// init file has created the users.
func waitReady(t testing.TB, s *Server) {
	t.Helper()
	h, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = h.PingContext(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("MariaDB at %s never accepted a login: %v", s.Addr(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
