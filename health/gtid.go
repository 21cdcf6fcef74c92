package health

import (
	"fmt"
	"strconv"
	"strings"
)

// GTID is one MariaDB global transaction id: domain-server-sequence.
type GTID struct {
	Domain, Server uint32
	Seq            uint64
}

// GTIDPos is a MariaDB GTID position (as in @@gtid_slave_pos or Gtid_IO_Pos): the last GTID
// of each replication domain, keyed by domain.
type GTIDPos map[uint32]GTID

// ParseGTIDPos parses "0-1-100,1-2-7" (spaces and newlines allowed; "" is empty).
func ParseGTIDPos(s string) (GTIDPos, error) {
	pos := GTIDPos{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		f := strings.Split(part, "-")
		if len(f) != 3 {
			return nil, fmt.Errorf("health: bad GTID %q", part)
		}
		d, err1 := strconv.ParseUint(f[0], 10, 32)
		sv, err2 := strconv.ParseUint(f[1], 10, 32)
		seq, err3 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("health: bad GTID %q", part)
		}
		if _, dup := pos[uint32(d)]; dup {
			return nil, fmt.Errorf("health: domain %d twice in %q", d, s)
		}
		pos[uint32(d)] = GTID{Domain: uint32(d), Server: uint32(sv), Seq: seq}
	}
	return pos, nil
}

// Contains reports whether p includes every transaction of q: in each of q's domains, p's
// sequence number is at least q's. (With gtid_strict_mode, sequence numbers of a domain grow
// across servers, so they order a domain's transactions.)
func (p GTIDPos) Contains(q GTIDPos) bool {
	for d, g := range q {
		if p[d].Seq < g.Seq {
			return false
		}
	}
	return true
}

// String formats p as MariaDB does, by domain.
func (p GTIDPos) String() string {
	ds := make([]uint32, 0, len(p))
	for d := range p {
		ds = append(ds, d)
	}
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && ds[j] < ds[j-1]; j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
	parts := make([]string, len(ds))
	for i, d := range ds {
		g := p[d]
		parts[i] = fmt.Sprintf("%d-%d-%d", g.Domain, g.Server, g.Seq)
	}
	return strings.Join(parts, ",")
}
