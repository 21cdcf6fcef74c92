package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/etcdtest"
)

// The --etcd-cacert/--etcd-cert/--etcd-key and --etcd-user flags against an etcd that
// requires mutual TLS and authentication: with all of them the configuration round-trips;
// without any one of them (or with a wrong password) the proxy cannot read or write it.
func TestEtcdTLSAndAuth(t *testing.T) {
	e := etcdtest.StartSecure(t)
	full := sourceFlags{
		etcdEndpoints: []string{e.Endpoint}, etcdPrefix: "/shardproxy/secure/",
		etcdCA: e.CAFile, etcdCert: e.CertFile, etcdKey: e.KeyFile, etcdUser: e.User,
	}
	t.Setenv(etcdPasswordEnv, e.Password)

	src, err := full.openEtcd(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rev, err := src.Push(ctx, []byte(testDoc), 0)
	if err != nil {
		t.Fatalf("push over TLS with a user: %v", err)
	}
	doc, err := src.Fetch(ctx)
	if err != nil || string(doc.Data) != testDoc || doc.Revision != rev {
		t.Fatalf("fetch: revision %d (pushed %d), %q, %v", doc.Revision, rev, doc.Data, err)
	}

	cases := []struct {
		name   string
		change func(f *sourceFlags)
		pw     string
	}{
		{"wrong password", func(*sourceFlags) {}, "not-the-password"},
		{"no user", func(f *sourceFlags) { f.etcdUser = "" }, e.Password},
		{"no client certificate", func(f *sourceFlags) { f.etcdCert, f.etcdKey = "", "" }, e.Password},
		{"system roots instead of the CA", func(f *sourceFlags) { f.etcdCA = "" }, e.Password},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := full
			c.change(&f)
			t.Setenv(etcdPasswordEnv, c.pw)
			s, err := f.openEtcd(slog.New(slog.DiscardHandler))
			if err != nil {
				return // refused before contacting etcd: also a refusal
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if doc, err := s.Fetch(ctx); err == nil {
				t.Fatalf("read the configuration (revision %d) without the right credentials", doc.Revision)
			}
			if _, err := s.Push(ctx, []byte(testDoc), -1); err == nil {
				t.Fatal("wrote the configuration without the right credentials")
			}
		})
	}
}
