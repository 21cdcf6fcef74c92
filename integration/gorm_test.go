package integration

import (
	"errors"
	"testing"
	"time"

	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

type gormOrder struct {
	ID        uint64 `gorm:"primaryKey"`
	UserID    uint64 `gorm:"index"`
	Status    string `gorm:"size:16;default:new"`
	Total     float64
	Note      *string
	CreatedAt time.Time
	Items     []gormItem `gorm:"foreignKey:OrderID"`
}

type gormItem struct {
	ID      uint64 `gorm:"primaryKey"`
	OrderID uint64 `gorm:"index"`
	SKU     string `gorm:"size:32"`
	Qty     int
}

// TestGORM runs GORM's AutoMigrate (which introspects through information_schema and SHOW
// statements), then CRUD with associations and a transaction, through the proxy, in a
// logical database whose physical name differs.
func TestGORM(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t, dbMap{Logical: "gormshop", Physical: "gormshop_phys"})
	p := startProxy(t, cfg)
	db, err := gorm.Open(gormmysql.Open(p.dsn(appUser, appPass, "gormshop", "parseTime=true")),
		&gorm.Config{Logger: logger.Default.LogMode(logger.Silent)})
	if err != nil {
		t.Fatalf("gorm.Open through the proxy: %v", err)
	}
	if err := db.AutoMigrate(&gormOrder{}, &gormItem{}); err != nil {
		t.Fatalf("AutoMigrate: %v", err)
	}
	// A second AutoMigrate introspects existing tables and must find nothing to change.
	if err := db.AutoMigrate(&gormOrder{}, &gormItem{}); err != nil {
		t.Fatalf("second AutoMigrate: %v", err)
	}
	if !db.Migrator().HasTable(&gormOrder{}) || !db.Migrator().HasColumn(&gormOrder{}, "Note") {
		t.Fatal("Migrator does not see the migrated table or its column")
	}
	note := "fragile"
	o := gormOrder{ID: 1, UserID: 7, Total: 19.5, Note: &note, Items: []gormItem{{SKU: "A", Qty: 1}, {SKU: "B", Qty: 2}}}
	if err := db.Create(&o).Error; err != nil {
		t.Fatalf("Create: %v", err)
	}
	var got gormOrder
	if err := db.Preload("Items").First(&got, 1).Error; err != nil {
		t.Fatalf("First: %v", err)
	}
	if got.UserID != 7 || got.Status != "new" || len(got.Items) != 2 || got.Note == nil || *got.Note != note {
		t.Fatalf("read back %+v", got)
	}
	if err := db.Model(&got).Update("Status", "paid").Error; err != nil {
		t.Fatalf("Update: %v", err)
	}
	errRollback := errors.New("roll back")
	err = db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&gormOrder{ID: 2, UserID: 8, Total: 1}).Error; err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("Transaction: %v", err)
	}
	var n int64
	if err := db.Model(&gormOrder{}).Where("id = ?", 2).Count(&n).Error; err != nil || n != 0 {
		t.Fatalf("rolled-back row: count %d, err %v", n, err)
	}
	// The row is really in MariaDB, where the proxy put it.
	if s := queryString(t, e.root, "SELECT status FROM gormshop_phys.gorm_orders WHERE id = 1"); s != "paid" {
		t.Fatalf("status on MariaDB = %q, want paid", s)
	}
	if err := db.Delete(&gormItem{}, "order_id = ?", 1).Error; err != nil {
		t.Fatalf("Delete: %v", err)
	}
}
