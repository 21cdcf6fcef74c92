package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
)

// Models of TestGORMSharded: orders and their items sharded by user id (a database per
// shard, the same table name everywhere), ledger entries by account id with a table per
// slot, currencies broadcast, notes a single table on the default shard. The shard key is
// part of the orders' primary key, so GORM's own WHERE on the primary key names the shard.
type gsOrder struct {
	ID        uint64 `gorm:"primaryKey;autoIncrement:false"`
	UserID    uint64 `gorm:"primaryKey;autoIncrement:false"`
	Status    string `gorm:"size:16;default:new"`
	Total     float64
	CreatedAt time.Time
	Items     []gsOrderItem `gorm:"foreignKey:OrderID"`
}

type gsOrderItem struct {
	ID      uint64 `gorm:"primaryKey"` // auto-increment: GORM reads it back with RETURNING
	OrderID uint64 `gorm:"index"`
	UserID  uint64 `gorm:"index"`
	SKU     string `gorm:"size:32"`
	Qty     int
}

type gsEntry struct {
	ID        uint64 `gorm:"primaryKey"`
	AccountID int64  `gorm:"index"`
	Amount    int64
	Memo      string `gorm:"size:64;uniqueIndex:idx_gs_ledger_memo_account,priority:1"`
	Memo2     string `gorm:"size:8;uniqueIndex:idx_gs_ledger_memo_account,priority:2"`
}

func (gsEntry) TableName() string { return "gs_ledger" }

type gsCurrency struct {
	Code string `gorm:"primaryKey;size:3"`
	Name string `gorm:"size:32"`
}

type gsNote struct {
	ID   uint64 `gorm:"primaryKey"`
	Text string `gorm:"size:64"`
}

// sqlLog is a GORM logger that records every statement GORM runs.
type sqlLog struct {
	logger.Interface
	mu   sync.Mutex
	stmt []string
}

func (l *sqlLog) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	s, _ := fc()
	l.mu.Lock()
	l.stmt = append(l.stmt, s)
	l.mu.Unlock()
}

func (l *sqlLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.stmt
	l.stmt = nil
	return out
}

// TestGORMSharded runs GORM's AutoMigrate, Migrator introspection and CRUD (with RETURNING
// as GORM sends it to MariaDB, associations and transactions) through the proxy over four
// real MariaDB shards, with server-side prepared statements and with interpolated ones.
// Where each row lives is checked on the shards directly.
func TestGORMSharded(t *testing.T) {
	se := newShardedEnv(t,
		map[string]any{"name": "gs_orders", "kind": "sharded", "key": "user_id", "scheme": "by_user"},
		map[string]any{"name": "gs_order_items", "kind": "sharded", "key": "user_id", "scheme": "by_user"},
		map[string]any{"name": "gs_ledger", "kind": "sharded", "key": "account_id", "scheme": "by_account", "table_per_slot": true},
		map[string]any{"name": "gs_currencies", "kind": "broadcast"},
	)
	models := []any{&gsOrder{}, &gsOrderItem{}, &gsEntry{}, &gsCurrency{}, &gsNote{}}
	for i, params := range []string{"interpolateParams=false", "interpolateParams=true"} {
		t.Run(params, func(t *testing.T) {
			log := &sqlLog{Interface: logger.Default.LogMode(logger.Silent)}
			db, err := gorm.Open(gormmysql.Open(se.proxy.dsn(appUser, appPass, "shop", "parseTime=true", params)),
				&gorm.Config{Logger: log, DisableForeignKeyConstraintWhenMigrating: true})
			if err != nil {
				t.Fatalf("gorm.Open through the proxy: %v", err)
			}
			if err := db.AutoMigrate(models...); err != nil {
				t.Fatalf("AutoMigrate: %v", err)
			}
			log.take()
			// Everything exists now: a second AutoMigrate only introspects.
			if err := db.AutoMigrate(models...); err != nil {
				t.Fatalf("second AutoMigrate: %v", err)
			}
			for _, s := range log.take() {
				if u := strings.ToUpper(strings.TrimSpace(s)); !strings.HasPrefix(u, "SELECT") {
					t.Errorf("second AutoMigrate changed something: %s", s)
				}
			}
			t.Run("Physical", func(t *testing.T) { testGORMPhysical(t, se) })
			t.Run("Migrator", func(t *testing.T) { testGORMMigrator(t, db) })
			t.Run("Orders", func(t *testing.T) { testGORMOrders(t, se, db, log, uint64(1000*(i+1))) })
			t.Run("TablePerSlot", func(t *testing.T) { testGORMLedger(t, se, db, int64(100*(i+1))) })
			t.Run("BroadcastAndSingle", func(t *testing.T) { testGORMBroadcastSingle(t, se, db, uint64(10*(i+1))) })
		})
	}
}

// testGORMPhysical: AutoMigrate created every physical table where the rules put it.
func testGORMPhysical(t *testing.T, se *shardedEnv) {
	for i, sh := range se.shards {
		got := strings.Split(queryString(t, sh, "SELECT GROUP_CONCAT(table_name) FROM information_schema.tables WHERE table_schema = 'shop' AND table_name LIKE 'gs%'"), ",")
		want := []string{"gs_currencies", fmt.Sprintf("gs_ledger_%04d", 2*i), fmt.Sprintf("gs_ledger_%04d", 2*i+1), "gs_order_items", "gs_orders"}
		if i == 0 {
			want = append(want, "gs_notes")
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("shard %d has %v, want %v", i, got, want)
		}
		idx := queryString(t, sh, "SELECT COUNT(DISTINCT index_name) FROM information_schema.statistics WHERE table_schema = 'shop' AND table_name = ?", fmt.Sprintf("gs_ledger_%04d", 2*i+1))
		if idx != "3" { // PRIMARY, account_id, memo+memo2, and nothing twice
			t.Errorf("shard %d: gs_ledger_%04d has %s indexes, want 3", i, 2*i+1, idx)
		}
	}
}

// testGORMMigrator: the Migrator sees logical tables, once each, with their columns and indexes.
func testGORMMigrator(t *testing.T, db *gorm.DB) {
	m := db.Migrator()
	for _, model := range []any{&gsOrder{}, &gsOrderItem{}, &gsEntry{}, &gsCurrency{}, &gsNote{}} {
		if !m.HasTable(model) {
			t.Errorf("HasTable(%T) = false", model)
		}
	}
	if m.HasTable("gs_ledger_0001") {
		t.Error("HasTable sees a physical slot table")
	}
	var n int64
	if err := db.Raw("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ?", "shop").Scan(&n).Error; err != nil || n != 5 {
		t.Errorf("information_schema counts %d tables (%v), want the 5 logical ones", n, err)
	}
	if !m.HasColumn(&gsEntry{}, "Amount") || !m.HasColumn(&gsOrder{}, "Status") || m.HasColumn(&gsEntry{}, "nothing") {
		t.Error("HasColumn is wrong")
	}
	if !m.HasIndex(&gsEntry{}, "AccountID") || !m.HasIndex(&gsEntry{}, "idx_gs_ledger_memo_account") || !m.HasIndex(&gsOrderItem{}, "OrderID") || m.HasIndex(&gsEntry{}, "idx_nothing") {
		t.Error("HasIndex is wrong")
	}
	tables, err := m.GetTables()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tables)
	if got := strings.Join(tables, ","); got != "gs_currencies,gs_ledger,gs_notes,gs_order_items,gs_orders" {
		t.Errorf("GetTables = %s, want each logical table once", got)
	}
	cols, err := m.ColumnTypes(&gsEntry{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cols {
		names = append(names, c.Name())
	}
	if got := strings.Join(names, ","); got != "id,account_id,amount,memo,memo2" {
		t.Errorf("ColumnTypes(gs_ledger) = %s", got)
	}
	idx, err := m.GetIndexes(&gsEntry{})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range idx {
		if i.Table() != "gs_ledger" {
			t.Errorf("index %s of table %q, want gs_ledger", i.Name(), i.Table())
		}
	}
	if len(idx) != 3 {
		t.Errorf("GetIndexes(gs_ledger) = %d indexes, want 3", len(idx))
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	var table, create string
	if err := sqlDB.QueryRow("SHOW CREATE TABLE gs_ledger").Scan(&table, &create); err != nil {
		t.Fatal(err)
	}
	if table != "gs_ledger" || !strings.HasPrefix(create, "CREATE TABLE `gs_ledger` (") {
		t.Errorf("SHOW CREATE TABLE gs_ledger = %q, %q", table, create)
	}
	var owners []string
	if err := db.Raw("SELECT table_name FROM information_schema.columns WHERE table_schema = DATABASE() AND column_name = ?", "account_id").Scan(&owners).Error; err != nil {
		t.Fatal(err)
	}
	if strings.Join(owners, ",") != "gs_ledger" {
		t.Errorf("tables with column account_id: %v, want gs_ledger once", owners)
	}
}

func testGORMOrders(t *testing.T, se *shardedEnv, db *gorm.DB, log *sqlLog, base uint64) {
	users := []uint64{base + 1, base + 2, base + 3, base + 4, base + 5}
	for _, u := range users {
		o := gsOrder{ID: u * 10, UserID: u, Total: 10.5,
			Items: []gsOrderItem{{UserID: u, SKU: "A", Qty: 1}, {UserID: u, SKU: "B", Qty: 2}}}
		log.take()
		if err := db.Create(&o).Error; err != nil {
			t.Fatalf("Create order of user %d: %v", u, err)
		}
		sent := strings.Join(log.take(), "\n")
		if !strings.Contains(sent, "RETURNING `id`") {
			t.Fatalf("GORM did not use RETURNING for the items:\n%s", sent)
		}
		if o.Items[0].ID == 0 || o.Items[1].ID == o.Items[0].ID || o.Status != "new" {
			t.Errorf("user %d: RETURNING gave item ids %d, %d; status %q", u, o.Items[0].ID, o.Items[1].ID, o.Status)
		}
		want := userShard(t, int64(u))
		for i, sh := range se.shards {
			n := queryString(t, sh, "SELECT COUNT(*) FROM gs_orders WHERE user_id = ?", u)
			items := queryString(t, sh, "SELECT COUNT(*) FROM gs_order_items WHERE user_id = ? AND order_id = ?", u, u*10)
			if i == want && (n != "1" || items != "2") || i != want && (n != "0" || items != "0") {
				t.Errorf("user %d: shard %d holds %s orders, %s items; the rules put them on shard %d", u, i, n, items, want)
			}
		}
	}
	u := users[0]
	var got gsOrder
	if err := db.Preload("Items").First(&got, "user_id = ?", u).Error; err != nil {
		t.Fatalf("First with Preload: %v", err)
	}
	if got.ID != u*10 || got.Status != "new" || len(got.Items) != 2 {
		t.Errorf("read back %+v", got)
	}
	var all []gsOrder // items of several users: a query over every shard
	if err := db.Preload("Items").Where("user_id IN ?", users).Order("id").Find(&all).Error; err != nil {
		t.Fatalf("Find with Preload: %v", err)
	}
	if len(all) != len(users) {
		t.Fatalf("Find: %d orders, want %d", len(all), len(users))
	}
	for i, o := range all {
		if o.UserID != users[i] || len(o.Items) != 2 || o.Items[0].UserID != o.UserID {
			t.Errorf("order %d: %+v", i, o)
		}
	}
	// Update and delete through the primary key, which holds the shard key.
	if err := db.Model(&got).Update("status", "paid").Error; err != nil {
		t.Fatalf("Update: %v", err)
	}
	if s := queryString(t, se.shards[userShard(t, int64(u))], "SELECT status FROM gs_orders WHERE user_id = ?", u); s != "paid" {
		t.Errorf("status on the shard = %q", s)
	}
	var gone []gsOrderItem
	if err := db.Clauses(clause.Returning{}).Where("user_id = ? AND sku = ?", u, "B").Delete(&gone).Error; err != nil {
		t.Fatalf("Delete ... RETURNING: %v", err)
	}
	if len(gone) != 1 || gone[0].SKU != "B" || gone[0].OrderID != u*10 {
		t.Errorf("DELETE RETURNING gave %+v", gone)
	}
	if err := db.Delete(&gsOrder{}, "user_id = ? AND id = ?", users[1], users[1]*10).Error; err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if n := queryString(t, se.shards[userShard(t, int64(users[1]))], "SELECT COUNT(*) FROM gs_orders WHERE user_id = ?", users[1]); n != "0" {
		t.Errorf("deleted order still on its shard (%s rows)", n)
	}
	// A transaction on one shard: committed, then one rolled back.
	u = users[2]
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&gsOrderItem{OrderID: u * 10, UserID: u, SKU: "C", Qty: 3}).Error; err != nil {
			return err
		}
		return tx.Model(&gsOrder{ID: u * 10, UserID: u}).Update("total", 99).Error
	})
	if err != nil {
		t.Fatalf("Transaction: %v", err)
	}
	errRollback := errors.New("roll back")
	err = db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&gsOrderItem{OrderID: u * 10, UserID: u, SKU: "D", Qty: 4}).Error; err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("rolled-back transaction: %v", err)
	}
	sh := se.shards[userShard(t, int64(u))]
	if got := queryString(t, sh, "SELECT GROUP_CONCAT(sku ORDER BY sku) FROM gs_order_items WHERE user_id = ?", u); got != "A,B,C" {
		t.Errorf("items on the shard after the transactions: %s, want A,B,C", got)
	}
	if got := queryString(t, sh, "SELECT total FROM gs_orders WHERE user_id = ?", u); got != "99" {
		t.Errorf("total on the shard = %s", got)
	}
}

func testGORMLedger(t *testing.T, se *shardedEnv, db *gorm.DB, base int64) {
	for a := base; a < base+8; a++ {
		e := gsEntry{AccountID: a, Amount: a * 3, Memo: fmt.Sprint("m", a), Memo2: "x"}
		if err := db.Create(&e).Error; err != nil {
			t.Fatalf("Create entry of account %d: %v", a, err)
		}
		if e.ID == 0 {
			t.Errorf("account %d: no id came back", a)
		}
		slot := a % 8
		table := fmt.Sprintf("gs_ledger_%04d", slot)
		if got := queryString(t, se.shards[slot/2], "SELECT amount FROM "+table+" WHERE id = ? AND account_id = ?", e.ID, a); got != fmt.Sprint(a*3) {
			t.Errorf("account %d: %s on shard %d has amount %q", a, table, slot/2, got)
		}
		var back gsEntry
		if err := db.Where("account_id = ?", a).First(&back).Error; err != nil || back.Amount != a*3 {
			t.Errorf("account %d read back %+v, %v", a, back, err)
		}
	}
	a := base + 3
	if err := db.Model(&gsEntry{}).Where("account_id = ?", a).Update("amount", 7).Error; err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := queryString(t, se.shards[(a%8)/2], fmt.Sprintf("SELECT amount FROM gs_ledger_%04d WHERE account_id = ?", a%8), a); got != "7" {
		t.Errorf("amount on the shard = %s", got)
	}
	if err := db.Where("account_id = ?", a).Delete(&gsEntry{}).Error; err != nil {
		t.Fatalf("Delete: %v", err)
	}
	var n int64
	if err := db.Model(&gsEntry{}).Where("account_id BETWEEN ? AND ?", base, base+7).Count(&n).Error; err != nil || n != 7 {
		t.Errorf("entries left: %d, %v; want 7", n, err)
	}
}

func testGORMBroadcastSingle(t *testing.T, se *shardedEnv, db *gorm.DB, id uint64) {
	for _, sh := range se.shards { // broadcast writes need XA: fill every copy directly
		mustExec(t, sh, "REPLACE INTO gs_currencies VALUES ('EUR', 'Euro')")
	}
	var c gsCurrency
	if err := db.First(&c, "code = ?", "EUR").Error; err != nil || c.Name != "Euro" {
		t.Errorf("broadcast read: %+v, %v", c, err)
	}
	if err := db.Create(&gsNote{ID: id, Text: "hello"}).Error; err != nil {
		t.Fatalf("Create note: %v", err)
	}
	for i, sh := range se.shards {
		if i == 0 {
			if got := queryString(t, sh, "SELECT text FROM gs_notes WHERE id = ?", id); got != "hello" {
				t.Errorf("note on the default shard: %q", got)
			}
		} else if n := queryString(t, sh, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'shop' AND table_name = 'gs_notes'"); n != "0" {
			t.Errorf("shard %d has a gs_notes table", i)
		}
	}
}
