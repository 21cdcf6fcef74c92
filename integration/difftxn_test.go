package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestTransactionsDifferential is the differential test of transactions: random sessions
// (transaction control, autocommit, savepoints, writes on one shard and on several, reads,
// statement errors) run statement by statement on one MariaDB holding all the rows and
// through the proxy over four shards, with the text protocol and with server-side prepared
// statements. Every statement must end the same way both ways (error code and SQLSTATE,
// affected rows and LAST_INSERT_ID, rows), except where the documented one-writer rule
// refuses a write inside a transaction (1235, the transaction rolled back: the reference
// then rolls back too); after each session every table must hold the same rows.
func TestTransactionsDifferential(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SHARDPROXY_TXN_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	sessions := 16
	if s := os.Getenv("SHARDPROXY_TXN_SESSIONS"); s != "" {
		sessions, _ = strconv.Atoi(s)
	}
	t.Logf("seed %d (rerun with SHARDPROXY_TXN_SEED=%d)", seed, seed)
	se := newShardedEnv(t, scatterTables...)
	se.servers[0].Exec(t, "CREATE DATABASE ref")
	ref := se.servers[0].DB(t, "ref")
	db := se.proxy.open(t, appUser, appPass, "shop", "parseTime=true")
	for _, ddl := range append(slices.Clone(scatterDDL), txnNotesDDL) {
		mustExec(t, ref, ddl)
		mustExec(t, db, ddl)
	}
	loadScatterData(t, ref, db, se.shards[:], scatterData(seed))
	u := newTxnUniverse(seed)
	for m, mode := range []string{"interpolateParams=true", "interpolateParams=false"} {
		ok := t.Run(mode, func(t *testing.T) {
			stats := txnStats{errors: map[string]int{}}
			defer func() { t.Logf("%d sessions: %s", sessions, stats) }()
			for i := range sessions {
				r := rand.New(rand.NewPCG(seed, uint64(m*100000+i)))
				px := openSession(t, se.proxy.dsn(appUser, appPass, "shop", mode, "parseTime=true"))
				rf := openSession(t, se.servers[0].DSN("ref")+"&"+mode)
				log, err := runTxnSession(t.Context(), &txnGen{r: r, u: u, m: &txnModel{autocommit: true}}, px, rf, m == 1, &stats)
				_ = px.Close()
				_ = rf.Close()
				if err != nil {
					t.Fatalf("seed %d, %s, session %d: %v\nthe session:\n%s", seed, mode, i, err, strings.Join(log, "\n"))
				}
				for _, table := range txnTables {
					q := "SELECT * FROM " + table
					if diff := diffResults(query(t, ref, q), query(t, db, q), false); diff != "" {
						t.Fatalf("seed %d, %s, after session %d: %s: %s\nthe session:\n%s", seed, mode, i, q, diff, strings.Join(log, "\n"))
					}
				}
			}
		})
		if !ok {
			return // the data differ from here on
		}
	}
}

// openSession opens one client connection (a database/sql pool of its own holding it);
// closing the returned connection's pool ends the session.
func openSession(t *testing.T, dsn string) *txnConn {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	c, err := db.Conn(t.Context())
	if err != nil {
		_ = db.Close()
		t.Fatal(err)
	}
	return &txnConn{Conn: c, db: db}
}

type txnConn struct {
	*sql.Conn
	db *sql.DB
}

func (c *txnConn) Close() error {
	return errors.Join(c.Conn.Close(), c.db.Close())
}

// txnModel is what the one-writer rule needs to know of the session, kept from the
// statements and the reference's answers: whether a transaction is open (or autocommit
// is off, where every statement is in one), the shards written by the writes that
// succeeded in it, and the savepoints with the shards written before each.
type txnModel struct {
	autocommit bool
	inTrans    bool // @@in_transaction on the reference after the last statement
	written    []int
	savepoints []txnSavepoint
	readOnly   bool // START TRANSACTION READ ONLY: MariaDB refuses to prepare a write
	// idUnknown: an INSERT whose first row's id the server generated failed on a later
	// row. MariaDB's LAST_INSERT_ID() then holds the id of the row it wrote and took back;
	// the proxy's, which learns an id only from an OK packet, stays as it was (README,
	// "Session functions"). LAST_INSERT_ID() is not read again until an INSERT sets it on
	// both (idResync).
	idUnknown bool
}

// idResync are the statements that leave the same LAST_INSERT_ID() on the proxy and
// MariaDB whatever came before, when they succeed: an INSERT whose one row's id the server
// generates, and one that ends in LAST_INSERT_ID(id) either way.
var idResync = []string{
	"INSERT INTO d_notes (note, n) VALUES (?, ?)",
	"INSERT INTO d_notes (note, n) VALUES (?, ?) ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)",
}

// idLost is the INSERT whose generated first row a later row's failure takes back.
const idLost = "INSERT INTO d_notes (id, note, n) VALUES (NULL, ?, 0), (?, ?, 1)"

type txnSavepoint struct {
	name, raw string // compared without case and quotes; as written
	written   []int
}

func (m *txnModel) inTxn() bool { return m.inTrans || !m.autocommit }

// refuses reports whether the rule refuses a write to shards: inside a transaction a
// write may touch one shard, the one the transaction already wrote if any.
func (m *txnModel) refuses(shards []int) bool {
	if !m.inTxn() {
		return false
	}
	return len(shards) > 1 || len(m.written) > 0 && !slices.Equal(m.written, shards)
}

func (m *txnModel) ended() {
	m.written, m.savepoints = nil, nil
}

// savepointName is a savepoint's name as MariaDB compares it (without case).
func savepointName(raw string) string {
	return strings.ToLower(strings.Trim(raw, "`"))
}

// update applies a statement that ran on the reference (ok says it succeeded) to the model,
// given the reference's @@in_transaction afterwards.
func (m *txnModel) update(s txnStmt, ok, inTrans bool) {
	wasTxn, wasOpen := m.inTxn(), m.inTrans
	q := strings.ToUpper(s.sql)
	switch {
	case s.sql == idLost && !ok:
		m.idUnknown = true
	case slices.Contains(idResync, s.sql) && ok:
		m.idUnknown = false
	}
	if ok {
		switch {
		case s.kind == txnWrite && wasTxn:
			m.written = slices.Clone(s.shards)
		case strings.HasPrefix(q, "SAVEPOINT ") && wasTxn:
			name := savepointName(s.sp)
			m.savepoints = slices.DeleteFunc(m.savepoints, func(sp txnSavepoint) bool { return sp.name == name })
			m.savepoints = append(m.savepoints, txnSavepoint{name: name, raw: s.sp, written: m.written})
		case strings.HasPrefix(q, "ROLLBACK TO "), strings.HasPrefix(q, "RELEASE SAVEPOINT "):
			name := savepointName(s.sp)
			i := slices.IndexFunc(m.savepoints, func(sp txnSavepoint) bool { return sp.name == name })
			if i >= 0 && strings.HasPrefix(q, "RELEASE") {
				m.savepoints = m.savepoints[:i]
			} else if i >= 0 {
				m.written = m.savepoints[i].written
				m.savepoints = m.savepoints[:i+1]
			}
		case q == "SET AUTOCOMMIT = 0":
			m.autocommit = false
		case q == "SET AUTOCOMMIT = 1":
			m.autocommit = true
		case strings.HasPrefix(q, "COMMIT"), q == "ROLLBACK", q == "ROLLBACK AND CHAIN":
			m.ended()
		case strings.HasPrefix(q, "BEGIN"), strings.HasPrefix(q, "START TRANSACTION"):
			m.ended()
			m.readOnly = strings.HasSuffix(q, "READ ONLY")
		}
	}
	m.inTrans = inTrans
	if wasOpen && !inTrans || !inTrans && m.autocommit {
		m.ended()
	}
	if !inTrans {
		m.readOnly = false
	}
}

// runTxnSession generates and runs one session on the proxy (px) and the reference (rf),
// comparing every statement's outcome; binary says statements with parameters are prepared.
// It returns the session's statements and outcomes so far and the first difference.
func runTxnSession(ctx context.Context, g *txnGen, px, rf querier, binary bool, stats *txnStats) ([]string, error) {
	var log []string
	n := 8 + g.r.IntN(25)
	for i := 0; i <= n+1; i++ {
		st := g.next()
		switch i {
		case n:
			st = txnStmt{sql: []string{"COMMIT", "ROLLBACK"}[g.r.IntN(2)], kind: txnControl}
		case n + 1:
			st = txnStmt{sql: "SET autocommit = 1", kind: txnControl}
		}
		prepared := binary && len(st.args) > 0
		if st.kind == txnWrite && g.m.refuses(st.shards) && !(prepared && (st.prepareFails || g.m.readOnly)) {
			// The documented one-writer rule: refused, the transaction rolled back.
			got := txnRun(ctx, px, st)
			log = append(log, fmt.Sprintf("%s\n    proxy: %s (refused by the one-writer rule; the reference rolls back)", st, got))
			if got.code != "1235 (42000)" || !strings.Contains(got.msg, "the transaction was rolled back") {
				return log, fmt.Errorf("%s: through the proxy %s, want 1235 (42000) refusing a second writing shard (written %v, this write %v)", st, got, g.m.written, st.shards)
			}
			if _, err := rf.ExecContext(ctx, "ROLLBACK"); err != nil {
				return log, fmt.Errorf("ROLLBACK on the reference: %w", err)
			}
			g.m.ended()
			g.m.inTrans, g.m.readOnly = false, false
			stats.statements++
			stats.refused++
			continue
		}
		got, want := txnRun(ctx, px, st), txnRun(ctx, rf, st)
		log = append(log, fmt.Sprintf("%s\n    proxy: %s\n    one MariaDB: %s", st, got, want))
		if diff := want.diff(got, st.ordered); diff != "" {
			return log, fmt.Errorf("%s: %s", st, diff)
		}
		stats.statements++
		if want.code != "" {
			stats.errors[want.code]++
		}
		if g.r.IntN(3) == 0 {
			// ROW_COUNT() of the statement, asked here: the probe below is a SELECT, after
			// which it is -1.
			rc := txnStmt{sql: "SELECT ROW_COUNT()", kind: txnRead, ordered: true}
			got, want := txnRun(ctx, px, rc), txnRun(ctx, rf, rc)
			log = append(log, fmt.Sprintf("%s\n    proxy: %s\n    one MariaDB: %s", rc, got, want))
			if diff := want.diff(got, true); diff != "" {
				return log, fmt.Errorf("%s after %s: %s", rc, st, diff)
			}
		}
		inTrans, err := tryQuery(rf, "SELECT @@in_transaction")
		if err != nil {
			return log, err
		}
		g.m.update(st, want.code == "", text(inTrans.Rows[0][0]) == "1")
	}
	return log, nil
}

// txnStats counts what the sessions ran, for the log.
type txnStats struct {
	statements, refused int
	errors              map[string]int // error code (SQLSTATE) -> statements failing with it
}

func (s txnStats) String() string {
	codes := slices.Sorted(maps.Keys(s.errors))
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%s ×%d", c, s.errors[c]))
	}
	return fmt.Sprintf("%d statements, %d refused by the one-writer rule, errors %s", s.statements, s.refused, strings.Join(parts, ", "))
}

// txnOutcome is how a statement ended: an error code and SQLSTATE with its message, or
// affected rows and LAST_INSERT_ID, or rows.
type txnOutcome struct {
	code, msg        string
	affected, lastID int64
	res              *result
}

func (o txnOutcome) String() string {
	switch {
	case o.code != "":
		return "ERROR " + o.code + " " + o.msg
	case o.res != nil:
		rows := rowStrings(o.res.Rows)
		if len(rows) > 4 {
			rows = append(rows[:4], fmt.Sprintf("... %d rows", len(o.res.Rows)))
		}
		return fmt.Sprintf("rows %q", rows)
	}
	return fmt.Sprintf("OK, %d affected, last insert id %d", o.affected, o.lastID)
}

// diff describes how got differs from o (the reference's outcome), or "".
func (o txnOutcome) diff(got txnOutcome, ordered bool) string {
	switch {
	case o.code != got.code:
		return fmt.Sprintf("through the proxy %s, on one MariaDB %s", got, o)
	case o.res != nil && got.res != nil:
		if d := diffResults(*o.res, *got.res, ordered); d != "" {
			return "through the proxy " + d
		}
	case o.affected != got.affected || o.lastID != got.lastID:
		return fmt.Sprintf("through the proxy %s, on one MariaDB %s", got, o)
	}
	return ""
}

// txnRun runs one statement and describes how it ended.
func txnRun(ctx context.Context, q querier, st txnStmt) txnOutcome {
	var o txnOutcome
	var err error
	if st.kind == txnRead {
		var r result
		r, err = tryQuery(q, st.sql, st.args...)
		o.res = &r
	} else {
		var res sql.Result
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		res, err = q.ExecContext(ctx, st.sql, st.args...)
		cancel()
		if err == nil {
			o.affected, _ = res.RowsAffected()
			o.lastID, _ = res.LastInsertId()
		}
	}
	var me *mysql.MySQLError
	switch {
	case errors.As(err, &me):
		o.code, o.msg, o.res = fmt.Sprintf("%d (%s)", me.Number, me.SQLState[:]), me.Message, nil
	case err != nil:
		o.code, o.msg, o.res = "failure", err.Error(), nil
	}
	return o
}
