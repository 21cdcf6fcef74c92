package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/shardproxy/shardproxy/internal/etcdtest"
)

func newEtcd(t *testing.T, srv *etcdtest.Server, prefix string) *Etcd {
	t.Helper()
	e, err := NewEtcd(EtcdOptions{Endpoints: []string{srv.Endpoint()}, Prefix: prefix, RetryInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// watcher runs Watch in a goroutine owned by the test and counts its calls.
func watcher(t *testing.T, s Source) <-chan struct{} {
	t.Helper()
	ch := make(chan struct{}, 64)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- s.Watch(ctx, func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	})
	return ch
}

// fetchUntil fetches after every notification until the document is want.
func fetchUntil(t *testing.T, s Source, notes <-chan struct{}, want string) Doc {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		d, err := s.Fetch(t.Context())
		if err == nil && string(d.Data) == want {
			return d
		}
		select {
		case <-notes:
		case <-deadline:
			t.Fatalf("document never became %q (last %q, %v)", want, d.Data, err)
		}
	}
}

func TestEtcdPushFetchWatch(t *testing.T) {
	srv := etcdtest.Start(t)
	e := newEtcd(t, srv, "/t1")
	if e.Prefix() != "/t1/" || e.Name() != "etcd:/t1/" {
		t.Errorf("prefix %q name %q", e.Prefix(), e.Name())
	}
	if _, err := e.Fetch(t.Context()); !errors.Is(err, ErrNoConfig) {
		t.Fatalf("Fetch of an empty prefix: %v, want ErrNoConfig", err)
	}
	rev1, err := e.Push(t.Context(), []byte("a: 1\n"), 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Fetch(t.Context())
	if err != nil || string(d.Data) != "a: 1\n" || d.Revision != rev1 || len(d.Digest) != 64 {
		t.Fatalf("Fetch = %+v, %v; want a: 1 at %d", d, err, rev1)
	}
	if m, ok, err := e.Meta(t.Context()); err != nil || !ok || m.Digest != d.Digest {
		t.Errorf("Meta = %+v %v %v, want digest %s", m, ok, err, d.Digest)
	}
	if _, err := e.Push(t.Context(), []byte("a: 2\n"), 0); !errors.Is(err, ErrConflict) {
		t.Errorf("push expecting no document: %v, want ErrConflict", err)
	}
	notes := watcher(t, e)
	rev2, err := e.Push(t.Context(), []byte("a: 3\n"), rev1)
	if err != nil {
		t.Fatal(err)
	}
	if d := fetchUntil(t, e, notes, "a: 3\n"); d.Revision != rev2 {
		t.Errorf("revision %d, want %d", d.Revision, rev2)
	}
	// Another prefix is another configuration.
	other := newEtcd(t, srv, "/t2/")
	if _, err := other.Fetch(t.Context()); !errors.Is(err, ErrNoConfig) {
		t.Errorf("Fetch under another prefix: %v", err)
	}
}

func TestEtcdWatchSurvivesRestart(t *testing.T) {
	srv := etcdtest.Start(t)
	e := newEtcd(t, srv, "/r/")
	if _, err := e.Push(t.Context(), []byte("v: 1\n"), -1); err != nil {
		t.Fatal(err)
	}
	notes := watcher(t, e)
	srv.Stop()
	srv.StartAgain()
	if _, err := e.Push(t.Context(), []byte("v: 2\n"), -1); err != nil {
		t.Fatal(err)
	}
	fetchUntil(t, e, notes, "v: 2\n")
	// A change after the restart is seen too (the watch was re-established).
	if _, err := e.Push(t.Context(), []byte("v: 3\n"), -1); err != nil {
		t.Fatal(err)
	}
	fetchUntil(t, e, notes, "v: 3\n")
}

// notesUntil fetches after every notification, and only then, until the document is want;
// it fails after within.
func notesUntil(t *testing.T, s Source, notes <-chan struct{}, want string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case <-notes:
		case <-deadline:
			t.Fatalf("no notification led to the document %q within %v", want, within)
		}
		ctx, cancel := context.WithTimeout(t.Context(), within)
		d, err := s.Fetch(ctx)
		cancel()
		if err == nil && string(d.Data) == want {
			return
		}
	}
}

// TestEtcdWatchNotifiesWhenEstablished: a change between the caller's read and the start of
// its watch (which starts at etcd's current revision) is not missed: Watch notifies once the
// watch is established.
func TestEtcdWatchNotifiesWhenEstablished(t *testing.T) {
	srv := etcdtest.Start(t)
	e := newEtcd(t, srv, "/n/")
	if _, err := e.Push(t.Context(), []byte("v: 1\n"), -1); err != nil {
		t.Fatal(err)
	}
	if d, err := e.Fetch(t.Context()); err != nil || string(d.Data) != "v: 1\n" {
		t.Fatalf("Fetch = %q, %v", d.Data, err)
	}
	if _, err := e.Push(t.Context(), []byte("v: 2\n"), -1); err != nil {
		t.Fatal(err)
	}
	notesUntil(t, e, watcher(t, e), "v: 2\n", 5*time.Second)
}

// TestEtcdStartedWhileDown is a proxy started from its last-known-good copy: source and
// watch made while etcd is down, etcd back, a push at once (before the watch is
// established). The watch's notifications alone lead to the pushed document, soon.
func TestEtcdStartedWhileDown(t *testing.T) {
	srv := etcdtest.Start(t)
	if _, err := newEtcd(t, srv, "/d/").Push(t.Context(), []byte("v: 1\n"), -1); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	e := newEtcd(t, srv, "/d/")
	notes := watcher(t, e)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err := e.Fetch(ctx)
	cancel()
	if err == nil {
		t.Fatal("Fetch with etcd down succeeded")
	}
	for len(notes) > 0 { // interruptions while etcd was down
		<-notes
	}
	srv.StartAgain()
	up := time.Now()
	if _, err := newEtcd(t, srv, "/d/").Push(t.Context(), []byte("v: 2\n"), -1); err != nil {
		t.Fatal(err)
	}
	notesUntil(t, e, notes, "v: 2\n", 5*time.Second)
	t.Logf("the pushed document was read %v after etcd was back", time.Since(up).Round(time.Millisecond))
}

func TestEtcdWatchAfterCompaction(t *testing.T) {
	srv := etcdtest.Start(t)
	e := newEtcd(t, srv, "/c/")
	old, err := e.Push(t.Context(), []byte("v: 1\n"), -1)
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for i := 2; i <= 4; i++ {
		if last, err = e.Push(t.Context(), []byte("v: x\n"), -1); err != nil {
			t.Fatal(err)
		}
	}
	cli, err := e.client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(t.Context(), last); err != nil {
		t.Fatal(err)
	}
	// A watch resuming after revision old (as after a disconnection) meets the compaction.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	next, err := e.watchOnce(ctx, old, func() {})
	if !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("watchOnce from a compacted revision: %v, want ErrCompacted", err)
	}
	if next != last-1 {
		t.Errorf("resume after %d, want %d (the compaction revision - 1)", next, last-1)
	}
	// Watch as a whole carries on: it re-reads (calls changed) and sees later pushes.
	notes := watcher(t, e)
	if _, err := e.Push(t.Context(), []byte("v: 5\n"), -1); err != nil {
		t.Fatal(err)
	}
	fetchUntil(t, e, notes, "v: 5\n")
	if _, err := cli.Compact(t.Context(), last+1, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Push(t.Context(), []byte("v: 6\n"), -1); err != nil {
		t.Fatal(err)
	}
	fetchUntil(t, e, notes, "v: 6\n")
}

func TestEtcdUnreachable(t *testing.T) {
	srv := etcdtest.Start(t)
	e := newEtcd(t, srv, "/u/")
	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := e.Fetch(ctx); err == nil {
		t.Fatal("Fetch with etcd down succeeded")
	}
}

func TestFileSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := NewFile(path) // catches SIGHUP from here on
	defer f.Close()
	notes := watcher(t, f)
	if err := os.WriteFile(path, []byte("a: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-notes:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification after SIGHUP")
	}
	d, err := f.Fetch(t.Context())
	if err != nil || string(d.Data) != "a: 2\n" || d.Revision != 0 || !strings.HasPrefix(f.Name(), "file:") {
		t.Errorf("Fetch = %+v %v", d, err)
	}
}

func TestLastKnownGood(t *testing.T) {
	l := LastKnownGood{Path: filepath.Join(t.TempDir(), "lkg.yaml")}
	if _, err := l.Load(); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
	doc := NewDoc([]byte("listen: 127.0.0.1:1\n"), 42)
	if err := l.Save("etcd:/p/", doc); err != nil {
		t.Fatal(err)
	}
	got, err := l.Load()
	if err != nil || string(got.Data) != string(doc.Data) || got.Revision != 42 || got.Digest != doc.Digest {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, doc)
	}
	if fi, err := os.Stat(l.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v %v, want 0600", fi.Mode(), err)
	}
	if err := os.WriteFile(l.Path, []byte("listen: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Load(); err == nil {
		t.Error("Load accepted a file shardproxy did not write")
	}
}

// TestEtcdAuth: with etcd's authentication on, the source reads and watches with its user
// and password, and a wrong password is an error, not a silent empty configuration.
func TestEtcdAuth(t *testing.T) {
	srv := etcdtest.Start(t)
	root, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx := t.Context()
	for _, step := range []func() error{
		func() error { _, err := root.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := root.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := root.RoleAdd(ctx, "proxy"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx, "proxy", "/a/", clientv3.GetPrefixRangeEnd("/a/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := root.UserAdd(ctx, "proxy", "proxypw"); return err },
		func() error { _, err := root.UserGrantRole(ctx, "proxy", "proxy"); return err },
		func() error { _, err := root.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	// etcd checks passwords with bcrypt: slow under the race detector on a busy machine.
	e, err := NewEtcd(EtcdOptions{Endpoints: []string{srv.Endpoint()}, Prefix: "/a/", Username: "proxy", Password: "proxypw", RetryInterval: 20 * time.Millisecond, DialTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	notes := watcher(t, e)
	if _, err := e.Push(ctx, []byte("x: 1\n"), 0); err != nil {
		t.Fatal(err)
	}
	fetchUntil(t, e, notes, "x: 1\n")
	bad, err := NewEtcd(EtcdOptions{Endpoints: []string{srv.Endpoint()}, Prefix: "/a/", Username: "proxy", Password: "wrong", DialTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := bad.Fetch(fctx); err == nil {
		t.Error("Fetch with a wrong password succeeded")
	}
	// With etcd down, an authenticating source can still be made (a proxy then starts from
	// its last-known-good copy); its reads fail within the dial timeout.
	srv.Stop()
	down, err := NewEtcd(EtcdOptions{Endpoints: []string{srv.Endpoint()}, Prefix: "/a/", Username: "proxy", Password: "proxypw", DialTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("NewEtcd with etcd down: %v", err)
	}
	defer down.Close()
	start := time.Now()
	if _, err := down.Fetch(ctx); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("Fetch with etcd down: %v after %v", err, time.Since(start))
	}
}

// TestEtcdWatchSurvivesLeaderChange: on a three-member cluster, stopping the leader (a new
// one is elected) does not lose the watch: the next change is seen.
func TestEtcdWatchSurvivesLeaderChange(t *testing.T) {
	cl := etcdtest.StartCluster(t)
	e, err := NewEtcd(EtcdOptions{Endpoints: cl.Endpoints(), Prefix: "/l/", RetryInterval: 20 * time.Millisecond, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Push(t.Context(), []byte("v: 1\n"), -1); err != nil {
		t.Fatal(err)
	}
	notes := watcher(t, e)
	stopped := cl.StopLeader(t)
	var others []string
	for i, ep := range cl.Endpoints() {
		if i != stopped {
			others = append(others, ep)
		}
	}
	pusher, err := NewEtcd(EtcdOptions{Endpoints: others, Prefix: "/l/", DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pusher.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		_, err := pusher.Push(ctx, []byte("v: 2\n"), -1)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new leader accepted a write: %v", err)
		}
	}
	fetchUntil(t, e, notes, "v: 2\n")
}
