-- The demo's order/finance schema, created through the proxy with plain DDL: the proxy runs
-- each statement on every physical copy of a sharded or broadcast table.
CREATE TABLE IF NOT EXISTS currencies (
  code     CHAR(3) PRIMARY KEY,
  name     VARCHAR(64) NOT NULL,
  decimals TINYINT NOT NULL DEFAULT 2
);
CREATE TABLE IF NOT EXISTS settings (
  name  VARCHAR(64) PRIMARY KEY,
  value VARCHAR(255) NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
  order_id   BIGINT NOT NULL,
  user_id    BIGINT NOT NULL,
  status     VARCHAR(16) NOT NULL DEFAULT 'new',
  currency   CHAR(3) NOT NULL,
  total      DECIMAL(14,2) NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (user_id, order_id)
);
CREATE TABLE IF NOT EXISTS order_items (
  order_id BIGINT NOT NULL,
  user_id  BIGINT NOT NULL,
  line     INT NOT NULL,
  sku      VARCHAR(32) NOT NULL,
  qty      INT NOT NULL,
  price    DECIMAL(14,2) NOT NULL,
  PRIMARY KEY (user_id, order_id, line)
);
CREATE TABLE IF NOT EXISTS accounts (
  account_id BIGINT PRIMARY KEY,
  owner      VARCHAR(64) NOT NULL,
  currency   CHAR(3) NOT NULL,
  balance    DECIMAL(18,2) NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ledger (
  entry_id   BIGINT NOT NULL,
  account_id BIGINT NOT NULL,
  amount     DECIMAL(18,2) NOT NULL,
  memo       VARCHAR(128) NOT NULL DEFAULT '',
  posted_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (account_id, entry_id)
);
