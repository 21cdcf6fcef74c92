package integration

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/shardproxy/shardproxy/rules"
)

// The generator of TestTransactionsDifferential: random sessions of transaction control,
// savepoints, single- and multi-shard writes, reads and statement errors over the
// differential schema of TestScatter (scatterDDL) plus txnNotesDDL, a single table.

// txnNotesDDL is a single table (not in the rules: it lives on the default shard s0) with
// an AUTO_INCREMENT key, whose LAST_INSERT_ID is meaningful through the proxy, and a
// unique column for duplicate-key errors.
const txnNotesDDL = "CREATE TABLE d_notes (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(24) NOT NULL UNIQUE, n INT NOT NULL)"

// txnTables are the tables compared after every session.
var txnTables = []string{"d_users", "d_orders", "d_items", "d_ledger", "currencies", "d_notes"}

// txnKind is what a generated statement is, for the model and for how it is run.
type txnKind int

const (
	txnRead    txnKind = iota // a query returning rows
	txnWrite                  // INSERT, UPDATE, DELETE, REPLACE: subject to the one-writer rule
	txnControl                // BEGIN, COMMIT, SAVEPOINT, SET autocommit, ...
)

// txnStmt is one statement of a session.
type txnStmt struct {
	sql     string
	args    []any
	kind    txnKind
	shards  []int  // the shards a write touches (sorted, distinct)
	ordered bool   // a read whose ORDER BY is total
	sp      string // the savepoint a savepoint statement names, as written
	// prepareFails: MariaDB refuses to prepare it (an unknown column), so as a prepared
	// statement it never executes and no write reaches the one-writer rule.
	prepareFails bool
}

func (s txnStmt) String() string {
	if len(s.args) == 0 {
		return s.sql
	}
	return fmt.Sprintf("%s %v", s.sql, s.args)
}

// txnUniverse is what the generator knows of the data across sessions: each id is always
// paired with the same shard key, so a row id lives on one shard only and a duplicate key
// is a duplicate on the reference exactly when it is on that shard.
type txnUniverse struct {
	orders, items, ledger map[int64]int64 // id -> user_id / account_id
	users                 []int64
	nextID                int64
	corpus                []scatterQuery
}

// newTxnUniverse starts from TestScatter's data set and read corpus for seed.
func newTxnUniverse(seed uint64) *txnUniverse {
	u := &txnUniverse{orders: map[int64]int64{}, items: map[int64]int64{}, ledger: map[int64]int64{}, nextID: 100000}
	for _, r := range scatterData(seed) {
		var id int64
		_, _ = fmt.Sscanf(r.vals, "(%d,", &id)
		switch r.table {
		case "d_users":
			u.users = append(u.users, r.key)
		case "d_orders":
			u.orders[id] = r.key
		case "d_items":
			u.items[id] = r.key
		case "d_ledger":
			u.ledger[id] = r.key
		}
	}
	u.corpus = scatterCorpus(seed)
	return u
}

// txnUserShard is the shard of a user (hash over 4 slots, one slot per shard) and
// txnAccountShard of a ledger account (mod 8 slots, two per shard).
func txnUserShard(user int64) int {
	slot, err := rules.HashFunc{N: 4}.Slot(rules.IntValue(user))
	if err != nil {
		panic(err) // an integer always hashes
	}
	return slot
}

func txnAccountShard(account int64) int { return int(account%8) / 2 }

// txnGen generates one session; the model it consults is the one the runner keeps.
type txnGen struct {
	r *rand.Rand
	u *txnUniverse
	m *txnModel
}

var (
	txnStatuses   = []any{"new", "paid", "shipped", "cancelled", nil}
	txnCurrencies = []any{"EUR", "USD", "GBP", "JPY", nil}
	txnNoteVals   = []any{"gift", "Gift", "rush ✈", "", nil, "résumé", "audited"}
	txnSavepoints = []string{"sp1", "sp2", "SP1", "a", "`x y`", "nosuch"}
)

func (g *txnGen) pick(xs []any) any { return xs[g.r.IntN(len(xs))] }
func (g *txnGen) user() int64       { return g.u.users[g.r.IntN(len(g.u.users))] }
func (g *txnGen) account() int64    { return 1 + g.r.Int64N(40) }
func (g *txnGen) money(lo, hi int) string {
	return fmt.Sprintf("%d.%02d", lo+g.r.IntN(hi-lo), g.r.IntN(100))
}

// anyID returns an id of m: an existing one (maybe deleted since: a duplicate or not) or,
// with fresh, a new one paired with key.
func (g *txnGen) anyID(m map[int64]int64, fresh bool, key int64) (int64, int64) {
	if fresh || len(m) == 0 {
		g.u.nextID++
		m[g.u.nextID] = key
		return g.u.nextID, key
	}
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	id := ids[g.r.IntN(len(ids))]
	return id, m[id]
}

func shardSet(shards ...int) []int {
	slices.Sort(shards)
	return slices.Compact(shards)
}

var allShards = []int{0, 1, 2, 3}

// next returns the session's next statement.
func (g *txnGen) next() txnStmt {
	switch n := g.r.IntN(100); {
	case n < 22:
		return g.control()
	case n < 34:
		return g.savepoint()
	case n < 70:
		return g.write()
	case n < 80:
		return g.failing()
	default:
		return g.read()
	}
}

func (g *txnGen) control() txnStmt {
	c := func(q string) txnStmt { return txnStmt{sql: q, kind: txnControl} }
	switch n := g.r.IntN(100); {
	case n < 22:
		return c("BEGIN")
	case n < 34:
		return c("START TRANSACTION")
	case n < 37:
		return c("START TRANSACTION READ ONLY")
	case n < 40:
		return c("START TRANSACTION WITH CONSISTENT SNAPSHOT")
	case n < 52:
		return c("SET autocommit = 0")
	case n < 62 && g.m.readOnly && g.m.inTrans && !g.m.autocommit:
		// MariaDB 10.11 leaves a session whose READ ONLY transaction SET autocommit = 1
		// ends (after COMMIT AND CHAIN kept it open under autocommit 0) unable to write
		// until an explicit COMMIT: every write answers 1792, though @@tx_read_only and
		// @@in_transaction are 0 (reproduced by hand: SET autocommit=0; START TRANSACTION
		// READ ONLY; COMMIT AND CHAIN; SET autocommit=1; INSERT ... -> 1792, BEGIN does not
		// clear it, COMMIT does). The proxy answers as the manual says (the implicit commit
		// ends the access mode); the session ends the transaction with COMMIT instead.
		return c("COMMIT")
	case n < 62:
		return c("SET autocommit = 1")
	case n < 78:
		return c("COMMIT")
	case n < 94:
		return c("ROLLBACK")
	case n < 97:
		return c("COMMIT AND CHAIN")
	default:
		return c("ROLLBACK AND CHAIN")
	}
}

func (g *txnGen) savepoint() txnStmt {
	name := txnSavepoints[g.r.IntN(len(txnSavepoints))]
	if len(g.m.savepoints) > 0 && g.r.IntN(2) == 0 {
		name = g.m.savepoints[g.r.IntN(len(g.m.savepoints))].raw
	}
	var q string
	switch n := g.r.IntN(10); {
	case n < 4 && name != "nosuch":
		q = "SAVEPOINT " + name
	case n < 6:
		q = "ROLLBACK TO SAVEPOINT " + name
	case n < 8:
		q = "ROLLBACK TO " + name
	default:
		q = "RELEASE SAVEPOINT " + name
	}
	return txnStmt{sql: q, kind: txnControl, sp: name}
}

// write returns a write that succeeds unless a key is duplicate: on one shard (shard key
// given), several shards (keys of several shards, no shard key), a broadcast or the single
// table.
func (g *txnGen) write() txnStmt {
	w := func(q string, shards []int, args ...any) txnStmt {
		return txnStmt{sql: q, args: args, kind: txnWrite, shards: shards}
	}
	u := g.user()
	switch g.r.IntN(20) {
	case 0, 1:
		id, u := g.anyID(g.u.orders, g.r.IntN(4) > 0, u)
		return w("INSERT INTO d_orders (id, user_id, status, total, currency, created_at, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
			shardSet(txnUserShard(u)), id, u, g.pick(txnStatuses), g.money(-50, 400), g.pick(txnCurrencies),
			fmt.Sprintf("2026-%02d-%02d 10:00:00", 1+g.r.IntN(12), 1+g.r.IntN(28)), g.pick(txnNoteVals))
	case 2, 3:
		// Several rows: of one user (one shard) or of two users (maybe two shards).
		u2 := u
		if g.r.IntN(2) == 0 {
			u2 = g.user()
		}
		id1, u := g.anyID(g.u.orders, g.r.IntN(5) > 0, u)
		id2, _ := g.anyID(g.u.orders, true, u2)
		return w("INSERT INTO d_orders (id, user_id, status, total) VALUES (?, ?, ?, ?), (?, ?, ?, ?)",
			shardSet(txnUserShard(u), txnUserShard(u2)), id1, u, g.pick(txnStatuses), g.money(0, 100), id2, u2, g.pick(txnStatuses), g.money(0, 100))
	case 4:
		return w("UPDATE d_orders SET total = total + ?, note = ? WHERE user_id = ?", shardSet(txnUserShard(u)), g.money(-5, 5), g.pick(txnNoteVals), u)
	case 5:
		u2 := g.user()
		return w("UPDATE d_orders SET status = ? WHERE user_id IN (?, ?)", shardSet(txnUserShard(u), txnUserShard(u2)), g.pick(txnStatuses), u, u2)
	case 6:
		return w("UPDATE d_orders SET currency = ? WHERE total < ?", allShards, g.pick(txnCurrencies), g.r.IntN(60)-20)
	case 7:
		id, u := g.anyID(g.u.items, g.r.IntN(3) == 0, u)
		return w("INSERT INTO d_items (id, order_id, user_id, sku, qty, price) VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE qty = qty + 1",
			shardSet(txnUserShard(u)), id, 1+g.r.IntN(500), u, fmt.Sprintf("sku-%d", g.r.IntN(15)), g.r.IntN(5), g.money(0, 100))
	case 8:
		return w("DELETE FROM d_items WHERE user_id = ? AND qty = ?", shardSet(txnUserShard(u)), u, g.r.IntN(5))
	case 9:
		return w("DELETE FROM d_items WHERE sku = ? AND qty > ?", allShards, fmt.Sprintf("sku-%d", g.r.IntN(15)), 2+g.r.IntN(3))
	case 10:
		id, u := g.anyID(g.u.items, g.r.IntN(2) == 0, u)
		return w("INSERT IGNORE INTO d_items (id, order_id, user_id, sku, qty, price) VALUES (?, ?, ?, 'sku-x', 1, NULL)", shardSet(txnUserShard(u)), id, 1, u)
	case 11:
		// REPLACE keeps each user's name unique (ORDER BY name in the read corpus is total).
		return w("REPLACE INTO d_users (user_id, name, country, born) VALUES (?, ?, ?, NULL)", shardSet(txnUserShard(u)), u, fmt.Sprintf("u%d", u), g.pick([]any{"DE", "FR", nil}))
	case 12:
		return w("UPDATE d_users SET country = ?, born = ? WHERE user_id = ?", shardSet(txnUserShard(u)), g.pick([]any{"DE", "US", nil}), fmt.Sprintf("19%02d-01-01", 50+g.r.IntN(50)), u)
	case 13:
		// Two accounts of adjacent slots: one shard when the first slot is even.
		a := g.account()
		id1, _ := g.anyID(g.u.ledger, g.r.IntN(4) > 0, a)
		a = g.u.ledger[id1]
		id2, _ := g.anyID(g.u.ledger, true, a+1)
		return w("INSERT INTO d_ledger (id, account_id, amount, kind, created_at) VALUES (?, ?, ?, 'fee', '2026-05-05 05:00:00'), (?, ?, ?, 'debit', '2026-05-06 05:00:00')",
			shardSet(txnAccountShard(a), txnAccountShard(a+1)), id1, a, g.money(-100, 100), id2, a+1, g.money(-100, 100))
	case 14:
		a := g.account()
		return w("UPDATE d_ledger SET amount = amount + ? WHERE account_id = ?", shardSet(txnAccountShard(a)), g.r.IntN(20)-10, a)
	case 15:
		return w("UPDATE d_ledger SET kind = ? WHERE amount BETWEEN ? AND ?", allShards, g.pick([]any{"debit", "credit", "fee"}), g.r.IntN(100)-50, g.r.IntN(100))
	case 16:
		code := g.pick([]any{"CHF", "SEK", "EUR"})
		if g.r.IntN(2) == 0 {
			return w("DELETE FROM currencies WHERE code = ? AND code <> 'EUR'", allShards, code)
		}
		return w("INSERT INTO currencies (code, name, rate) VALUES (?, ?, ?)", allShards, code, fmt.Sprint("name of ", code), "1.2500")
	case 17:
		return w("UPDATE currencies SET rate = rate + ? WHERE code IN ('USD', 'CHF')", allShards, "0.0100")
	case 18:
		return g.noteInsert()
	default:
		return w("UPDATE d_notes SET n = n + 1 WHERE n < ?", []int{0}, g.r.IntN(10))
	}
}

// noteInsert returns an INSERT into d_notes, whose AUTO_INCREMENT id the server generates,
// or the statement gives explicitly (LAST_INSERT_ID() then stays as it was), or both; or
// whose row turns into an update, or is skipped; or that sets LAST_INSERT_ID(expr).
func (g *txnGen) noteInsert() txnStmt {
	w := func(q string, args ...any) txnStmt {
		return txnStmt{sql: q, args: args, kind: txnWrite, shards: []int{0}}
	}
	note := func() string { return fmt.Sprintf("n%d", g.r.IntN(40)) }
	id := func() int { return 1 + g.r.IntN(60) }
	switch g.r.IntN(8) {
	case 0, 1:
		return w("INSERT INTO d_notes (note, n) VALUES (?, ?)", note(), g.r.IntN(10))
	case 2:
		return w("INSERT INTO d_notes (id, note, n) VALUES (?, ?, ?)", id(), note(), g.r.IntN(10))
	case 3:
		return w("INSERT INTO d_notes (id, note, n) VALUES (?, ?, 0), (NULL, ?, 1)", id(), note(), note())
	case 4:
		return w("INSERT INTO d_notes (id, note, n) VALUES (NULL, ?, 0), (?, ?, 1)", note(), id(), note())
	case 5:
		return w("INSERT INTO d_notes (note, n) VALUES (?, ?) ON DUPLICATE KEY UPDATE n = n + 1", note(), g.r.IntN(10))
	case 6:
		return w("INSERT IGNORE INTO d_notes (note, n) VALUES (?, 0), (?, 1)", note(), note())
	default:
		return w("INSERT INTO d_notes (note, n) VALUES (?, ?) ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)", note(), g.r.IntN(10))
	}
}

// failing returns a statement that fails on MariaDB when it reaches a row (or always):
// unknown columns (1054), division by zero (1365), bad values under strict mode (1366,
// 1264, 1406, 1048), a read-only transaction's write (1792).
func (g *txnGen) failing() txnStmt {
	u := g.user()
	one := shardSet(txnUserShard(u))
	switch g.r.IntN(9) {
	case 0:
		return txnStmt{sql: "SELECT id, nosuch FROM d_orders ORDER BY id", kind: txnRead, ordered: true}
	case 1:
		return txnStmt{sql: "SELECT nosuch FROM d_orders WHERE user_id = ?", args: []any{u}, kind: txnRead}
	case 2:
		return txnStmt{sql: "UPDATE d_orders SET nosuch = 1 WHERE user_id = ?", args: []any{u}, kind: txnWrite, shards: one, prepareFails: true}
	case 3:
		return txnStmt{sql: "UPDATE d_items SET qty = qty / ? WHERE user_id = ?", args: []any{0, u}, kind: txnWrite, shards: one}
	case 4:
		return txnStmt{sql: "UPDATE d_items SET qty = ? WHERE user_id = ?", args: []any{g.pick([]any{"abc", int64(1) << 40}), u}, kind: txnWrite, shards: one}
	case 5:
		return txnStmt{sql: "UPDATE d_orders SET note = ? WHERE user_id = ?", args: []any{strings.Repeat("long ", 14), u}, kind: txnWrite, shards: one}
	case 6:
		return txnStmt{sql: "UPDATE d_users SET name = NULL WHERE user_id = ?", args: []any{u}, kind: txnWrite, shards: one}
	case 7:
		return txnStmt{sql: "UPDATE d_items SET price = price / ? WHERE qty >= ?", args: []any{0, g.r.IntN(5)}, kind: txnWrite, shards: allShards}
	default:
		// A duplicate note (the first time not), or a duplicate explicit id.
		if g.r.IntN(2) == 0 {
			return txnStmt{sql: "INSERT INTO d_notes (id, note, n) VALUES (?, ?, 0)", args: []any{1 + g.r.IntN(5), fmt.Sprint("dup", g.r.IntN(3))}, kind: txnWrite, shards: []int{0}}
		}
		return txnStmt{sql: "INSERT INTO d_notes (note, n) VALUES (?, 0)", args: []any{fmt.Sprint("dup", g.r.IntN(3))}, kind: txnWrite, shards: []int{0}}
	}
}

// read returns a point or scatter read: the read corpus of TestScatter, reads of the rows
// the writes change, and the session's own state.
func (g *txnGen) read() txnStmt {
	r := func(q string, ordered bool, args ...any) txnStmt {
		return txnStmt{sql: q, args: args, kind: txnRead, ordered: ordered}
	}
	u := g.user()
	switch g.r.IntN(14) {
	case 0, 1, 2:
		q := g.u.corpus[g.r.IntN(len(g.u.corpus))]
		return r(q.sql, q.ordered, q.args...)
	case 3:
		return r("SELECT id, status, total, currency, note FROM d_orders WHERE user_id = ? ORDER BY id", true, u)
	case 4:
		return r("SELECT id, user_id, status, total FROM d_orders WHERE id > 100000 ORDER BY id", true)
	case 5:
		return r("SELECT COUNT(*), SUM(total), MIN(id), MAX(id) FROM d_orders", true)
	case 6:
		return r("SELECT user_id, COUNT(*), SUM(qty) FROM d_items GROUP BY user_id ORDER BY user_id", true)
	case 7:
		return r("SELECT account_id, COUNT(*), SUM(amount) FROM d_ledger WHERE account_id IN (?, ?) GROUP BY account_id ORDER BY account_id", true, g.account(), g.account())
	case 8:
		return r("SELECT code, name, rate FROM currencies ORDER BY code", true)
	case 9:
		return r("SELECT id, note, n FROM d_notes ORDER BY id", true)
	case 10:
		return r("SELECT total FROM d_orders WHERE user_id = ? ORDER BY id FOR UPDATE", true, u)
	case 11:
		if g.m.idUnknown { // see txnModel.idUnknown
			return r("SELECT @@autocommit", true)
		}
		return r("SELECT LAST_INSERT_ID(), @@autocommit", true)
	case 12:
		return r("SELECT @@in_transaction", true)
	default:
		return r("SELECT user_id, name, country, born FROM d_users WHERE user_id > ? ORDER BY name, user_id LIMIT 5", true, u)
	}
}
