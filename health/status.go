package health

import "time"

// Status is what the checker knows about one backend after a probe. It is a value: the
// checker never modifies a Status it handed out.
type Status struct {
	Backend string
	State   State
	Reason  string    // why the state last changed (the latest failure while not up)
	Since   time.Time // when the state last changed
	Checked time.Time // when this probe ended
	Err     error     // this probe's error; nil when it succeeded

	// The fields below come from the last successful probe, read at Seen (zero: never).
	Seen     time.Time
	ServerID uint32
	ReadOnly bool
	// BinlogPos is @@gtid_binlog_pos: the last transaction the server wrote to its binlog.
	BinlogPos string
	Settings  Settings
	// Replica is the server's replication state; nil when it is not a replica.
	Replica *Replication
}

// Settings are the server options and status the failover guarantees depend on.
type Settings struct {
	LogBin, LogSlaveUpdates, GTIDStrictMode bool
	// SemiSyncMaster is rpl_semi_sync_master_enabled; SemiSyncActive is the status
	// Rpl_semi_sync_master_status: false on a primary with semi-sync enabled means it fell
	// back to asynchronous replication.
	SemiSyncMaster, SemiSyncActive bool
	SemiSyncClients                int    // Rpl_semi_sync_master_clients
	SemiSyncWaitPoint              string // rpl_semi_sync_master_wait_point
	SemiSyncTimeout                time.Duration
	SemiSyncSlave                  bool // rpl_semi_sync_slave_enabled
	// SemiSyncWaitNoSlave is rpl_semi_sync_master_wait_no_slave: when OFF, a primary whose
	// last semi-sync replica goes away falls back to asynchronous replication at once instead
	// of waiting SemiSyncTimeout for one.
	SemiSyncWaitNoSlave bool
}

// Replication is a replica's view of its primary (SHOW SLAVE STATUS, gtid_slave_pos) and its
// lag.
type Replication struct {
	MasterHost string
	MasterPort int
	IORunning  string // Slave_IO_Running: Yes, No or Connecting
	SQLRunning bool
	// IOPos is Gtid_IO_Pos (received); SlavePos is @@gtid_slave_pos (applied).
	IOPos, SlavePos string
	LastIOError     string
	LastSQLError    string
	// Lag is how old the newest applied heartbeat is (LagKnown false without one); the
	// heartbeat is written on each primary every probe interval, so Lag is at most that
	// interval more than the true replication delay.
	Lag      time.Duration
	LagKnown bool
}

// Primary reports whether the status describes a writable server that replicates from
// nobody.
func (s Status) Primary() bool { return s.Replica == nil && !s.ReadOnly && !s.Seen.IsZero() }
