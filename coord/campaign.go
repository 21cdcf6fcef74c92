package coord

import (
	"context"
	"errors"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// campaign runs the election until ctx ends: a session (a lease kept alive), a campaign that
// returns once this proxy's key is the oldest, leadership until the session ends (the lease
// expired: etcd unreachable for its TTL) or ctx does, and again.
func (c *Etcd) campaign(ctx context.Context) {
	for ctx.Err() == nil {
		cli, err := c.o.Client()
		if err != nil {
			c.log.Warn("coord: no etcd client for the election", "err", err)
			if !c.pause(ctx) {
				return
			}
			continue
		}
		s, err := c.session(ctx, cli)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("coord: could not open an etcd session for the election", "err", err)
			if !c.pause(ctx) {
				return
			}
			continue
		}
		c.setLease(s.Lease())
		c.ack() // this proxy counts for a switchover's leader from now on
		c.term(ctx, s)
		c.setLease(0)
		// Revoking the lease deletes this proxy's election key: a successor need not wait
		// for the TTL.
		if err := s.Close(); err != nil {
			c.log.Debug("coord: closing the election session", "err", err)
		}
	}
}

// session opens an election session. Its lease is granted under ctx (while etcd is down the
// grant waits for it: a proxy asked to stop must not wait with it); the session itself is not
// bound to ctx, so that Close still revokes the lease after ctx ended.
func (c *Etcd) session(ctx context.Context, cli *clientv3.Client) (*concurrency.Session, error) {
	lease, err := cli.Grant(ctx, int64(c.ttl))
	if err != nil {
		return nil, err
	}
	return concurrency.NewSession(cli, concurrency.WithTTL(c.ttl), concurrency.WithLease(lease.ID))
}

// term campaigns on session s and leads until s or ctx ends.
func (c *Etcd) term(ctx context.Context, s *concurrency.Session) {
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // before the wait: ends the goroutine below
	wg.Go(func() {
		select {
		case <-s.Done():
			cancel()
		case <-cctx.Done():
		}
	})
	el := concurrency.NewElection(s, c.o.Prefix+KeyElection)
	if err := el.Campaign(cctx, c.o.ID); err != nil {
		if ctx.Err() == nil {
			c.log.Warn("coord: campaign interrupted; campaigning again", "err", err)
			c.pause(ctx)
		}
		return
	}
	c.mu.Lock()
	c.leading, c.lead = true, leadership{key: el.Key(), epoch: el.Rev()}
	target := c.target
	c.mu.Unlock()
	won := time.Now()
	c.log.Warn("coord: this proxy leads the topology", "proxy", c.o.ID, "epoch", el.Rev())
	if target != nil {
		target.LeadershipChanged()
	}
	<-cctx.Done()
	c.mu.Lock()
	c.leading = false
	c.mu.Unlock()
	if ctx.Err() == nil {
		c.log.Error("coord: this proxy lost the leadership of the topology (its etcd lease ended)", "epoch", el.Rev(), "led_for", time.Since(won))
	} else {
		rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
		defer rcancel()
		if err := el.Resign(rctx); err != nil {
			c.log.Debug("coord: resigning", "err", err)
		}
	}
	if target != nil {
		target.LeadershipChanged()
	}
}

// watchTopology delivers every new version of the shared topology until ctx ends: it reads the
// key, watches from that revision, and after a broken watch (etcd restarted, compaction, a
// member without a leader) reads again, so nothing is missed.
func (c *Etcd) watchTopology(ctx context.Context) {
	for {
		rev, err := c.resync(ctx)
		if err == nil {
			err = c.watchFrom(ctx, rev)
		}
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("coord: watch of the shared topology interrupted; reading and watching again", "err", err)
		if !c.pause(ctx) {
			return
		}
	}
}

// watchFrom watches the topology key after revision rev until the watch breaks.
func (c *Etcd) watchFrom(ctx context.Context, rev int64) error {
	cli, err := c.o.Client()
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range cli.Watch(wctx, c.key(), clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			return err
		}
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypePut {
				c.deliver(ev.Kv.Value, ev.Kv.ModRevision)
			}
		}
	}
	return errors.New("coord: watch channel closed")
}

// watchLeader keeps the leader's identity and epoch (for Status) until ctx ends.
func (c *Etcd) watchLeader(ctx context.Context) {
	pfx := c.o.Prefix + KeyElection
	for {
		cli, err := c.o.Client()
		var rev int64
		if err == nil {
			rev, err = c.readLeader(ctx, cli, pfx)
		}
		if err == nil {
			// From the revision read: a campaign key created between the read and the
			// watch's start is not missed.
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			for resp := range cli.Watch(wctx, pfx, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
				if err = resp.Err(); err != nil {
					break
				}
				if _, err = c.readLeader(ctx, cli, pfx); err != nil {
					break
				}
			}
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		c.log.Debug("coord: watch of the election interrupted", "err", err)
		if !c.pause(ctx) {
			return
		}
	}
}

// readLeader reads the oldest election key: its value is the leader's id, its create
// revision the leader's epoch. It returns the revision it read at.
func (c *Etcd) readLeader(ctx context.Context, cli *clientv3.Client, pfx string) (int64, error) {
	resp, err := cli.Get(ctx, pfx, clientv3.WithFirstCreate()...)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader, c.leaderEpoch = "", 0
	if len(resp.Kvs) > 0 {
		c.leader, c.leaderEpoch = string(resp.Kvs[0].Value), resp.Kvs[0].CreateRevision
	}
	return resp.Header.Revision, nil
}
