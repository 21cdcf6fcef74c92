package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFileReload: a file configuration reloads on SIGHUP without dropping a connection;
// prepared statements keep working; an invalid file is rejected and the running
// configuration keeps serving; changed restart-only settings are reported.
func TestFileReload(t *testing.T) {
	f := newEtcdFleet(t) // its MariaDB and documents; etcd unused here
	path := filepath.Join(t.TempDir(), "c.yaml")
	write := func(doc string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(f.doc("s0", ""))
	p := launchProxy(t, "file "+path, f.env, "--config", path)
	o := observe(t, p)
	o.waitFor(t, "zero", 10*time.Second)
	db := p.open(t, fleetUser, fleetPass, "shop")
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stmt, err := conn.PrepareContext(t.Context(), "SELECT v FROM kv WHERE id = ?")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	hup := func() {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	write(f.doc("s1", ""))
	hup()
	o.waitFor(t, "one", 10*time.Second)
	var v string
	if err := stmt.QueryRowContext(t.Context(), 1).Scan(&v); err != nil || v != "one" {
		t.Errorf("a statement prepared before the reload: %q %v, want one", v, err)
	}
	write(strings.Replace(f.doc("s0", ""), "shards:", "shards: [", 1))
	hup()
	eventually(t, 10*time.Second, "rejection logged", func() error {
		if !strings.Contains(p.log.String(), "configuration rejected") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	o.waitFor(t, "one", time.Second)
	write(strings.Replace(f.doc("s0", ""), "listen: 127.0.0.1:3307", "listen: 127.0.0.1:3399", 1) + "server: {max_connections: 77}\n")
	hup()
	o.waitFor(t, "zero", 10*time.Second)
	eventually(t, 10*time.Second, "restart-only settings reported", func() error {
		if !strings.Contains(p.log.String(), `take effect only after a restart; the running values stay" settings=[server.max_connections]`) {
			return fmt.Errorf("not in the log")
		}
		return nil
	})
}
