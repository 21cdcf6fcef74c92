// Package etcdtest runs a real single-member etcd server in the test process
// (go.etcd.io/etcd/server/v3/embed) for tests of the etcd configuration source, the reload
// loop and the integration suite. Tests only.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Server is an embedded etcd member on fixed loopback ports, so it can be stopped and
// started again at the same address with its data. Not safe for concurrent Start/Stop.
type Server struct {
	dir          string
	client, peer url.URL
	e            *embed.Etcd
	t            testing.TB
}

// Start starts a member with its data in a temporary directory; t.Cleanup stops it.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{dir: t.TempDir(), t: t}
	s.client = url.URL{Scheme: "http", Host: freeAddr(t)}
	s.peer = url.URL{Scheme: "http", Host: freeAddr(t)}
	s.StartAgain()
	t.Cleanup(s.Stop)
	return s
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Endpoint is the client address, "127.0.0.1:PORT".
func (s *Server) Endpoint() string { return s.client.Host }

// StartAgain starts the member (after Stop) on the same ports and data; it waits until the
// member serves.
func (s *Server) StartAgain() {
	s.t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "etcdtest"
	cfg.Dir = s.dir
	cfg.ListenClientUrls = []url.URL{s.client}
	cfg.AdvertiseClientUrls = []url.URL{s.client}
	cfg.ListenPeerUrls = []url.URL{s.peer}
	cfg.AdvertisePeerUrls = []url.URL{s.peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.TickMs, cfg.ElectionMs = 10, 100
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	var err error
	for attempt := 0; ; attempt++ {
		s.e, err = embed.StartEtcd(cfg)
		if err == nil || attempt == 20 {
			break
		}
		time.Sleep(50 * time.Millisecond) // the ports of the previous run may linger briefly
	}
	if err != nil {
		s.t.Fatalf("etcdtest: start: %v", err)
	}
	select {
	case <-s.e.Server.ReadyNotify():
	case err := <-s.e.Err():
		s.t.Fatalf("etcdtest: %v", err)
	case <-time.After(30 * time.Second):
		s.e.Close()
		s.t.Fatal("etcdtest: etcd did not become ready within 30s")
	}
}

// Stop stops the member (idempotent); its data stays for StartAgain.
func (s *Server) Stop() {
	if s.e != nil {
		s.e.Close()
		s.e = nil
	}
}

// String names the member for messages.
func (s *Server) String() string { return fmt.Sprintf("etcd at %s", s.client.Host) }

// Cluster is a three-member etcd cluster in the test process, for leader changes.
type Cluster struct {
	members []*embed.Etcd
	clients []string
}

// StartCluster starts three members on loopback ports and waits until they serve;
// t.Cleanup stops them.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	const n = 3
	names := make([]string, n)
	clientURLs := make([]url.URL, n)
	peerURLs := make([]url.URL, n)
	var initial []string
	for i := range n {
		names[i] = fmt.Sprintf("m%d", i)
		clientURLs[i] = url.URL{Scheme: "http", Host: freeAddr(t)}
		peerURLs[i] = url.URL{Scheme: "http", Host: freeAddr(t)}
		initial = append(initial, names[i]+"="+peerURLs[i].String())
	}
	c := &Cluster{}
	errc := make(chan error, n)
	for i := range n {
		cfg := embed.NewConfig()
		cfg.Name = names[i]
		cfg.Dir = t.TempDir()
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{clientURLs[i]}, []url.URL{clientURLs[i]}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peerURLs[i]}, []url.URL{peerURLs[i]}
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = "etcdtest-cluster"
		cfg.TickMs, cfg.ElectionMs = 10, 100
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			c.Stop()
			t.Fatalf("etcdtest: start member %s: %v", names[i], err)
		}
		c.members = append(c.members, e)
		c.clients = append(c.clients, clientURLs[i].Host)
		go func() {
			select {
			case <-e.Server.ReadyNotify():
				errc <- nil
			case err := <-e.Err():
				errc <- err
			case <-time.After(30 * time.Second):
				errc <- fmt.Errorf("member not ready within 30s")
			}
		}()
	}
	t.Cleanup(c.Stop)
	for range n {
		if err := <-errc; err != nil {
			t.Fatalf("etcdtest: %v", err)
		}
	}
	return c
}

// Endpoints are the members' client addresses.
func (c *Cluster) Endpoints() []string { return c.clients }

// StopLeader stops the member that leads now and returns its index.
func (c *Cluster) StopLeader(t testing.TB) int {
	t.Helper()
	for i, e := range c.members {
		if e != nil && e.Server.Leader() == e.Server.MemberID() {
			e.Close()
			c.members[i] = nil
			return i
		}
	}
	t.Fatal("etcdtest: no member leads")
	return -1
}

// Stop stops every member still running (idempotent).
func (c *Cluster) Stop() {
	for i, e := range c.members {
		if e != nil {
			e.Close()
			c.members[i] = nil
		}
	}
}
