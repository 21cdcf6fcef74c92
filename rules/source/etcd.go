package source

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// DefaultPrefix is the etcd key prefix used when none is configured.
const DefaultPrefix = "/shardproxy/"

// Key layout under the prefix (see README "Configuration in etcd").
const (
	// KeyConfig holds the whole configuration document: YAML, the same schema as the file.
	KeyConfig = "config"
	// KeyConfigMeta holds JSON about the last push: digest, time, host.
	KeyConfigMeta = "config-meta"
)

// EtcdOptions configure an Etcd source.
type EtcdOptions struct {
	Endpoints []string // required: "host:port" or URLs
	// Prefix is the key prefix, normalised to end in "/"; default DefaultPrefix.
	Prefix string
	// TLS, when set, is used for every connection (client certificates, CA).
	TLS *tls.Config
	// Username and Password authenticate to etcd when Username is set.
	Username, Password string
	// DialTimeout bounds establishing a connection; default 3s.
	DialTimeout time.Duration
	// RetryInterval is the pause before a broken watch is opened again; default 500ms.
	RetryInterval time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Etcd is a configuration document in etcd at PREFIX + KeyConfig. It owns an etcd client,
// made at first use (with authentication, making one needs etcd: a proxy must be able to
// start while etcd is down); Close releases it.
type Etcd struct {
	cfg    clientv3.Config
	prefix string
	retry  time.Duration
	log    *slog.Logger

	mu     sync.Mutex
	cli    *clientv3.Client // nil until the first successful connection
	closed bool
}

var _ Source = (*Etcd)(nil)

// NewEtcd returns a source on the etcd cluster of o. It does not contact etcd: the first
// Fetch, Watch or Push does.
func NewEtcd(o EtcdOptions) (*Etcd, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("source: etcd: no endpoints")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 3 * time.Second
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg := clientv3.Config{
		Endpoints: o.Endpoints, DialTimeout: o.DialTimeout, TLS: o.TLS,
		Username: o.Username, Password: o.Password,
		Logger: zap.NewNop(), // its warnings surface as errors of our calls, logged by us
		// Reconnect within about a second of etcd coming back (gRPC's default backoff
		// grows to two minutes).
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: o.DialTimeout,
		})},
	}
	return &Etcd{cfg: cfg, prefix: o.Prefix, retry: o.RetryInterval, log: o.Logger}, nil
}

// errClosed is returned after Close.
var errClosed = errors.New("source: etcd: closed")

// client returns the etcd client, connecting (and authenticating) first if needed; a failed
// attempt is tried again at the next call.
func (e *Etcd) client() (*clientv3.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errClosed
	}
	if e.cli == nil {
		cli, err := clientv3.New(e.cfg)
		if err != nil {
			return nil, fmt.Errorf("source: etcd: %w", err)
		}
		e.cli = cli
	}
	return e.cli, nil
}

// Client returns the source's etcd client, connecting first if needed (for the shared
// topology of package coord, on the same cluster and prefix). The source owns it: Close
// closes it.
func (e *Etcd) Client() (*clientv3.Client, error) { return e.client() }

// Close closes the etcd client. It is idempotent.
func (e *Etcd) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if e.cli == nil {
		return nil
	}
	err := e.cli.Close()
	e.cli = nil
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("source: etcd: %w", err)
	}
	return nil
}

// Name returns "etcd:PREFIX".
func (e *Etcd) Name() string { return "etcd:" + e.prefix }

// Prefix returns the normalised key prefix.
func (e *Etcd) Prefix() string { return e.prefix }

func (e *Etcd) key() string { return e.prefix + KeyConfig }

// Fetch reads the document (a linearizable read: a proxy never goes back to an older one).
// With no document it returns ErrNoConfig.
func (e *Etcd) Fetch(ctx context.Context) (Doc, error) {
	cli, err := e.client()
	if err != nil {
		return Doc{}, err
	}
	resp, err := cli.Get(ctx, e.key())
	if err != nil {
		return Doc{}, fmt.Errorf("source: etcd get %s: %w", e.key(), err)
	}
	if len(resp.Kvs) == 0 {
		return Doc{}, fmt.Errorf("%w at %s", ErrNoConfig, e.key())
	}
	kv := resp.Kvs[0]
	return NewDoc(kv.Value, kv.ModRevision), nil
}

// Watch calls changed for every change of the document, once when its first watch is
// established (it starts at etcd's current revision: a change between the caller's last
// read and that start, such as a push while etcd comes back, is re-read then), and once
// after every interruption of the watch (the caller re-reads, so nothing is missed): a
// compaction (ErrCompacted: the watch restarts at the compaction revision), a member
// without a leader (WithRequireLeader cancels such watches instead of letting them hang),
// etcd restarts.
func (e *Etcd) Watch(ctx context.Context, changed func()) error {
	var rev int64 // last revision seen; 0: start from now
	for {
		next, err := e.watchOnce(ctx, rev, changed)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rev = next
		e.log.Warn("etcd watch interrupted; re-reading and watching again", "prefix", e.prefix, "revision", rev, "err", err)
		changed()
		t := time.NewTimer(e.retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// watchOnce watches from revision rev+1 (or now, calling changed once the watch is
// established) until the watch breaks; it returns the revision to resume after and why it
// stopped.
func (e *Etcd) watchOnce(ctx context.Context, rev int64, changed func()) (int64, error) {
	cli, err := e.client()
	if err != nil {
		return rev, err
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithProgressNotify(), clientv3.WithCreatedNotify()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev+1))
	}
	for resp := range cli.Watch(wctx, e.key(), opts...) {
		if err := resp.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) || resp.CompactRevision > 0 {
				// Events between rev and the compaction are gone: resume at the oldest one
				// kept; the caller's re-read covers the gap.
				return resp.CompactRevision - 1, err
			}
			return rev, err
		}
		if resp.Created {
			if rev == 0 {
				// Started at the revision of this answer: whatever changed before it, the
				// caller reads now.
				rev = resp.Header.Revision
				changed()
			}
			continue
		}
		if resp.Header.Revision > rev && len(resp.Events) == 0 {
			rev = resp.Header.Revision // progress notification: nothing of ours changed before it
			continue
		}
		for _, ev := range resp.Events {
			rev = max(rev, ev.Kv.ModRevision)
		}
		if len(resp.Events) > 0 {
			changed()
		}
	}
	if err := ctx.Err(); err != nil {
		return rev, err
	}
	return rev, errors.New("source: etcd watch channel closed")
}

// Meta is what KeyConfigMeta holds about the last push.
type Meta struct {
	Digest   string    `json:"sha256"`
	PushedAt time.Time `json:"pushed_at"`
	Host     string    `json:"host"`
}

// ErrConflict means a push's expected revision no longer matched: someone pushed meanwhile.
var ErrConflict = errors.New("source: etcd: the configuration changed since it was read")

// Push writes data as the document, with its Meta, in one transaction. With expectRev >= 0
// the transaction succeeds only if the document's modification revision is still expectRev
// (0: no document yet); otherwise it returns ErrConflict. It returns the new revision.
// Push does not validate data: the caller does, before.
func (e *Etcd) Push(ctx context.Context, data []byte, expectRev int64) (int64, error) {
	doc := NewDoc(data, 0)
	host, _ := os.Hostname()
	meta, err := json.Marshal(Meta{Digest: doc.Digest, PushedAt: time.Now().UTC(), Host: host})
	if err != nil {
		return 0, fmt.Errorf("source: etcd push: %w", err)
	}
	cli, err := e.client()
	if err != nil {
		return 0, err
	}
	txn := cli.Txn(ctx)
	if expectRev >= 0 {
		txn = txn.If(clientv3.Compare(clientv3.ModRevision(e.key()), "=", expectRev))
	}
	resp, err := txn.Then(
		clientv3.OpPut(e.key(), string(data)),
		clientv3.OpPut(e.prefix+KeyConfigMeta, string(meta)),
	).Commit()
	if err != nil {
		return 0, fmt.Errorf("source: etcd push: %w", err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("%w (expected revision %d)", ErrConflict, expectRev)
	}
	return resp.Header.Revision, nil
}

// Meta reads KeyConfigMeta; ok is false when there is none.
func (e *Etcd) Meta(ctx context.Context) (m Meta, ok bool, err error) {
	cli, err := e.client()
	if err != nil {
		return Meta{}, false, err
	}
	resp, err := cli.Get(ctx, e.prefix+KeyConfigMeta)
	if err != nil {
		return Meta{}, false, fmt.Errorf("source: etcd get: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return Meta{}, false, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &m); err != nil {
		return Meta{}, false, fmt.Errorf("source: etcd %s: %w", e.prefix+KeyConfigMeta, err)
	}
	return m, true, nil
}
