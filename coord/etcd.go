package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/shardproxy/shardproxy/topo"
)

// Key layout under the configuration prefix (README "Several proxies").
const (
	// KeyTopology holds the shared topology: JSON of topo.Shared.
	KeyTopology = "topology"
	// KeyElection is the prefix of the election's keys, one per campaigning proxy, each bound
	// to its proxy's lease; the one created first leads.
	KeyElection = "election/"
	// KeyApplied is the prefix of one key per running proxy (bound to its lease) holding the
	// shared topology version it applied last: a switchover's leader waits on them.
	KeyApplied = "applied/"
)

// Defaults of Options.
const (
	// DefaultTTL is the leader's lease: a leader that dies (or loses etcd) is replaced within
	// about this long.
	DefaultTTL = 2 * time.Second
	// DefaultRetryInterval spaces attempts after an etcd error.
	DefaultRetryInterval = 500 * time.Millisecond
)

// Options configure an Etcd coordinator.
type Options struct {
	// Client returns the etcd client (made at first use: with authentication, making one
	// needs etcd, and a proxy must start while etcd is down); required. The caller owns the
	// client and closes it after Run returned. Until it succeeds this proxy does not lead.
	Client func() (*clientv3.Client, error)
	// Prefix is the configuration prefix (rules/source.Etcd.Prefix), ending in "/"; required.
	Prefix string
	// ID identifies this proxy in the election and in what it publishes; required.
	ID string
	// TTL is the lease of this proxy's election key, rounded up to whole seconds (etcd leases
	// count seconds); default DefaultTTL.
	TTL time.Duration
	// RetryInterval spaces attempts after an etcd error; default DefaultRetryInterval.
	RetryInterval time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Target receives the shared topology (satisfied by *topo.Topology).
type Target interface {
	ApplyShared(topo.Shared) bool
	// Settle waits (bounded) until the proxy has no statement in flight that a version it
	// applied stops (a switchover's hold); false if some remain: the version is then not
	// acknowledged, and the switchover's leader gives up.
	Settle(topo.Shared) bool
	LeadershipChanged()
}

// Status is a read-only view of the coordination, for the admin API and metrics.
type Status struct {
	ID      string `json:"proxy_id"`
	Leading bool   `json:"leading"`
	// Epoch is this proxy's leadership when it leads (0 otherwise).
	Epoch int64 `json:"epoch,omitempty"`
	// Leader and LeaderEpoch name the leader as this proxy last saw it ("" while none).
	Leader      string `json:"leader"`
	LeaderEpoch int64  `json:"leader_epoch"`
	// Version is the shared topology's version last seen (0: none published yet).
	Version uint64 `json:"topology_version"`
	// Refused counts this proxy's writes etcd refused because its leadership had ended.
	Refused uint64 `json:"refused_writes"`
}

// Etcd is one proxy's part in the election and the shared topology. Its methods are safe for
// concurrent use; Run owns its goroutines and returns when they ended.
type Etcd struct {
	o   Options
	ttl int // lease TTL in seconds
	log *slog.Logger

	mu          sync.Mutex
	target      Target
	cur         topo.Shared // the shared topology last seen
	curRev      int64       // its modification revision; 0: none
	leading     bool
	lead        leadership // this proxy's last leadership (kept after it ends: etcd judges)
	leader      string
	leaderEpoch int64
	refused     uint64
	lease       clientv3.LeaseID // this proxy's session lease now; 0: none

	ackMu sync.Mutex // serialises acknowledgements
	acked uint64     // the version acknowledged under lease
}

// leadership is an election key this proxy won with and its create revision (the epoch).
type leadership struct {
	key   string
	epoch int64
}

// New returns a coordinator; it does not contact etcd (Load and Run do).
func New(o Options) (*Etcd, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("coord: no etcd client")
	case o.ID == "":
		return nil, errors.New("coord: no proxy id")
	case !strings.HasSuffix(o.Prefix, "/"):
		return nil, fmt.Errorf("coord: prefix %q does not end in /", o.Prefix)
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ttl := max(1, int(math.Ceil(o.TTL.Seconds())))
	return &Etcd{o: o, ttl: ttl, log: o.Logger}, nil
}

func (c *Etcd) key() string { return c.o.Prefix + KeyTopology }

// Load makes target the receiver of the shared topology and hands it the current one, if
// any: a proxy that starts applies what the fleet decided (fenced backends above all) before
// it serves. It may be called again (it reads again).
func (c *Etcd) Load(ctx context.Context, target Target) error {
	c.mu.Lock()
	c.target = target
	c.mu.Unlock()
	_, err := c.resync(ctx)
	return err
}

// resync reads the shared topology, applies it if it is new, and returns the revision read at.
func (c *Etcd) resync(ctx context.Context) (int64, error) {
	cli, err := c.o.Client()
	if err != nil {
		return 0, err
	}
	resp, err := cli.Get(ctx, c.key())
	if err != nil {
		return 0, fmt.Errorf("coord: etcd get %s: %w", c.key(), err)
	}
	if len(resp.Kvs) > 0 {
		c.deliver(resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
	}
	return resp.Header.Revision, nil
}

// deliver records a version of the shared topology read at modRev and hands it to the
// target, unless it is not newer than the last one seen.
func (c *Etcd) deliver(data []byte, modRev int64) {
	var s topo.Shared
	if err := json.Unmarshal(data, &s); err != nil {
		c.log.Error("coord: the shared topology in etcd is not valid JSON; ignored", "key", c.key(), "revision", modRev, "err", err)
		return
	}
	c.mu.Lock()
	fresh := c.deliverLocked(s, modRev)
	target := c.target
	c.mu.Unlock()
	if fresh && target != nil && !target.Settle(s) {
		c.log.Warn("coord: not acknowledging a topology version: statements it stops are still running here", "version", s.Version)
		return
	}
	c.ack()
}

// deliverLocked records s and hands it to the target if it is newer than the last one seen,
// and reports whether it was. Called with c.mu held.
func (c *Etcd) deliverLocked(s topo.Shared, modRev int64) bool {
	if modRev <= c.curRev {
		return false
	}
	c.cur, c.curRev = s, modRev
	if c.target != nil {
		c.target.ApplyShared(s)
	}
	return true
}

// Leading reports whether this proxy leads now, and the epoch of its leadership.
func (c *Etcd) Leading() (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lead.epoch, c.leading
}

// Publish stores next as the shared topology in one etcd transaction that succeeds only if
// the election key this proxy won epoch with still exists with that create revision (it
// still leads: a leader whose lease expired is refused, whatever it believes) and the shared
// topology is still the version next follows. It returns what it stored, topo.ErrNotLeader
// or topo.ErrSharedConflict. Deliveries of the watch wait while it runs, so the target sees
// every version in order.
func (c *Etcd) Publish(ctx context.Context, epoch int64, next topo.Shared) (topo.Shared, error) {
	defer c.ack()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lead.epoch != epoch || epoch == 0 {
		return topo.Shared{}, fmt.Errorf("%w (epoch %d is not this proxy's)", topo.ErrNotLeader, epoch)
	}
	if next.Version != c.cur.Version+1 {
		return topo.Shared{}, fmt.Errorf("%w (version %d does not follow %d)", topo.ErrSharedConflict, next.Version, c.cur.Version)
	}
	next.Epoch, next.Leader, next.At = epoch, c.o.ID, time.Now().UTC()
	data, err := json.Marshal(next)
	if err != nil {
		return topo.Shared{}, fmt.Errorf("coord: %w", err)
	}
	cli, err := c.o.Client()
	if err != nil {
		return topo.Shared{}, fmt.Errorf("coord: publishing the topology: %w", err)
	}
	resp, err := cli.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(c.lead.key), "=", epoch),
		clientv3.Compare(clientv3.ModRevision(c.key()), "=", c.curRev),
	).Then(clientv3.OpPut(c.key(), string(data))).
		Else(clientv3.OpGet(c.lead.key), clientv3.OpGet(c.key())).Commit()
	if err != nil {
		return topo.Shared{}, fmt.Errorf("coord: publishing the topology: %w", err)
	}
	if resp.Succeeded {
		c.deliverLocked(next, resp.Header.Revision)
		return next, nil
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		var s topo.Shared
		if json.Unmarshal(kvs[0].Value, &s) == nil {
			c.deliverLocked(s, kvs[0].ModRevision)
		}
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 0 || kvs[0].CreateRevision != epoch {
		c.refused++
		c.leading = false
		c.log.Warn("coord: etcd refused a topology write: this proxy's leadership ended", "epoch", epoch, "version", next.Version)
		return topo.Shared{}, fmt.Errorf("%w: etcd refused the write of epoch %d", topo.ErrNotLeader, epoch)
	}
	return topo.Shared{}, fmt.Errorf("%w: version %d was based on revision %d", topo.ErrSharedConflict, next.Version, c.curRev)
}

// Confirm reads this proxy's election key (a linearizable read) and returns
// topo.ErrNotLeader unless it still exists with the create revision epoch.
func (c *Etcd) Confirm(ctx context.Context, epoch int64) error {
	c.mu.Lock()
	lead := c.lead
	c.mu.Unlock()
	if lead.epoch != epoch || epoch == 0 {
		return fmt.Errorf("%w (epoch %d is not this proxy's)", topo.ErrNotLeader, epoch)
	}
	cli, err := c.o.Client()
	if err != nil {
		return err
	}
	resp, err := cli.Get(ctx, lead.key)
	if err != nil {
		return fmt.Errorf("coord: confirming the leadership: %w", err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != epoch {
		c.mu.Lock()
		c.leading = false
		c.mu.Unlock()
		return fmt.Errorf("%w: the election key of epoch %d is gone", topo.ErrNotLeader, epoch)
	}
	return nil
}

// Status returns a view of the coordination.
func (c *Etcd) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{ID: c.o.ID, Leading: c.leading, Leader: c.leader, LeaderEpoch: c.leaderEpoch, Version: c.cur.Version, Refused: c.refused}
	if c.leading {
		st.Epoch = c.lead.epoch
	}
	return st
}

// Run campaigns for the leadership and watches the shared topology and the election until
// ctx ends; then it gives up its leadership (its election key is deleted with its lease, so
// another proxy takes over at once) and returns. Call Load first.
func (c *Etcd) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { c.watchTopology(ctx) })
	wg.Go(func() { c.watchLeader(ctx) })
	c.campaign(ctx)
	wg.Wait()
}

// pause waits the retry interval; false if ctx ended first.
func (c *Etcd) pause(ctx context.Context) bool {
	t := time.NewTimer(c.o.RetryInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ackTimeout bounds one acknowledgement write.
const ackTimeout = 2 * time.Second

// ack records under this proxy's lease the version of the shared topology it applied, if it
// has a session and the version is newer than the one it recorded.
func (c *Etcd) ack() {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	c.mu.Lock()
	v, lease := c.cur.Version, c.lease
	c.mu.Unlock()
	if lease == 0 || v <= c.acked {
		return
	}
	cli, err := c.o.Client()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	if _, err := cli.Put(ctx, c.o.Prefix+KeyApplied+c.o.ID, strconv.FormatUint(v, 10), clientv3.WithLease(lease)); err != nil {
		c.log.Warn("coord: could not record the applied topology version", "version", v, "err", err)
		return
	}
	c.acked = v
}

// setLease records the session lease acknowledgements are written under (0: none).
func (c *Etcd) setLease(l clientv3.LeaseID) {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lease, c.acked = l, 0
}

// WaitApplied waits until every running proxy (each with a session) recorded that it applied
// version or a later one, or ctx ends; then it names the proxies behind.
func (c *Etcd) WaitApplied(ctx context.Context, version uint64) error {
	cli, err := c.o.Client()
	if err != nil {
		return err
	}
	pfx := c.o.Prefix + KeyApplied
	for {
		resp, err := cli.Get(ctx, pfx, clientv3.WithPrefix())
		if err != nil {
			return fmt.Errorf("coord: reading the applied versions: %w", err)
		}
		var behind []string
		for _, kv := range resp.Kvs {
			if v, err := strconv.ParseUint(string(kv.Value), 10, 64); err != nil || v < version {
				behind = append(behind, strings.TrimPrefix(string(kv.Key), pfx))
			}
		}
		if len(behind) == 0 {
			return nil
		}
		wctx, cancel := context.WithCancel(ctx)
		wch := cli.Watch(wctx, pfx, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
		select {
		case <-wch:
		case <-ctx.Done():
		}
		cancel()
		if ctx.Err() != nil {
			return fmt.Errorf("coord: proxies %s have not applied version %d: %w", strings.Join(behind, ", "), version, ctx.Err())
		}
	}
}
