package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// proxyBin is the shardproxy binary built once by TestMain; read-only afterwards.
var proxyBin string

func TestMain(m *testing.M) {
	// testcontainers would otherwise dial the mapped ports on the Docker host's gateway
	// (this machine has /.dockerenv); the ports are published on loopback.
	if _, ok := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); !ok {
		_ = os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "shardproxy-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	proxyBin = filepath.Join(dir, "shardproxy")
	args := []string{"build", "-o", proxyBin}
	if os.Getenv("SHARDPROXY_IT_RACE") == "1" { // the proxy under the race detector; its reports fail the test
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/shardproxy")...)
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: building shardproxy:", err)
		return 1
	}
	return m.Run()
}
