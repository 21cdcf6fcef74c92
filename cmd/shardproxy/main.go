// Command shardproxy is a MySQL-protocol sharding proxy.
//
// This package is the composition root: flags, configuration, logging and the wiring of
// protocol → router → topo → pool. See ../../README.md.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only on --debug-addr
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/shardproxy/shardproxy/protocol"
	"github.com/shardproxy/shardproxy/router"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/rules/source"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "shardproxy:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "shardproxy",
		Short:         "A MySQL-protocol sharding proxy",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newCheckConfigCmd(), newHashPasswordCmd(), newConfigCmd(), newHashTokenCmd(), newSwitchoverCmd())
	return root
}

type serveFlags struct {
	src         sourceFlags
	listen      string
	logLevel    string
	logFormat   string
	debugAddr   string
	metricsAddr string
	shared      sharedFlags
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve (--config FILE | --etcd-endpoints HOSTS)",
		Short: "Run the proxy",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, f)
		},
	}
	cmd.Flags().StringVar(&f.src.config, "config", "", "YAML configuration file (reloaded on SIGHUP)")
	f.src.addEtcd(cmd.Flags())
	cmd.Flags().StringVar(&f.src.lastKnownGood, "last-known-good", "", "with etcd: keep a copy of the live configuration in this file and start from it when etcd is unreachable")
	cmd.Flags().StringVar(&f.listen, "listen", "", "client listen address (overrides the config; default 127.0.0.1:3307)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&f.logFormat, "log-format", "text", "text or json")
	cmd.Flags().StringVar(&f.debugAddr, "debug-addr", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060)")
	f.shared.add(cmd.Flags())
	cmd.Flags().StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (e.g. 127.0.0.1:9104); default off")
	return cmd
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", format)
}

// envSecrets resolves password_env from the process environment.
var envSecrets = rules.SecretsFunc(os.LookupEnv)

// loadSnapshot reads, validates and builds a configuration file, including the password hashes.
func loadSnapshot(path string) (*rules.Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	snap, err := buildSnapshot(data, envSecrets)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return snap, nil
}

func serve(ctx context.Context, f serveFlags) error {
	log, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	src, closeSrc, check, err := f.src.open(log)
	if err != nil {
		return err
	}
	// The shutdown steps, last added first; each one that takes long is named in the log.
	closing := newClosers(log)
	defer closing.run()
	closing.add("configuration source", closeSrc)
	lkg := source.LastKnownGood{Path: f.src.lastKnownGood}
	doc, snap, fromLKG, err := initialLoad(ctx, src, check, envSecrets, lkg, log)
	if err != nil {
		return err
	}
	store := rules.NewStore(snap)
	reg := prometheus.NewRegistry()
	// go_goroutines, process_open_fds, process_resident_memory_bytes, ...: the soak test and
	// operators watch them for leaks.
	registerRuntime(reg)
	co, err := newCoordinator(src, f.shared, log)
	if err != nil {
		return err
	}
	tp, checker, err := newTopology(snap, log, reg, coordinatorOf(co))
	if err != nil {
		return err
	}
	closing.add("topology and backend pools", tp.Close)
	closing.add("health checks", checker.Close) // first: no probe result reaches a closed topology
	if co != nil {
		closing.add("topology election", startCoordinator(ctx, co, tp, log))
		registerSharedMetrics(reg, co)
	}
	cl := newTimedBackend(tp, reg)
	opts, err := protocolOptions(snap, log)
	if err != nil {
		return err
	}
	rl := newReloader(src, envSecrets, store, liveTopology{tp: tp, checker: checker}, lkg, fixedSettings{listenOverridden: f.listen != "", snap: snap}, reg, log)
	rl.validate = check
	rl.started(doc, fromLKG)
	stopReload := goOwned(ctx, func(ctx context.Context) { rl.Run(ctx, fromLKG, time.Second) })
	closing.add("configuration reloads", stopReload)
	procs := &processes{}
	xam := newXAMetrics(reg)
	version, maxPacket := opts.ServerVersion, opts.MaxAllowedPacket
	if version == "" {
		version = protocol.DefaultServerVersion
	}
	if maxPacket == 0 {
		maxPacket = protocol.DefaultMaxAllowedPacket
	}
	rt := router.New(router.Options{Rules: store, Backend: cl, Logger: log, Metrics: newMetrics(reg), Processes: procs,
		XAMetrics: xam, XATestHook: xaTestHook(log), ServerVersion: version, MaxAllowedPacket: int64(maxPacket)})
	stopRecovery := startRecovery(ctx, store, cl, xam, log)
	closing.add("XA recovery", stopRecovery)
	srv, err := protocol.NewServer(opts, users{store}, handler{r: rt, m: newStatementMetrics(reg)})
	if err != nil {
		return err
	}
	procs.srv = srv // before Serve: no session exists yet
	registerConnMetrics(reg, srv)
	reg.MustRegister(backendCollector{tp: tp})
	stopAdmin, err := serveAdmin(&adminView{store: store, rl: rl, tp: tp, co: co, rt: rt, procs: procs, started: time.Now()}, reg, log)
	if err != nil {
		return err
	}
	closing.add("admin API", stopAdmin)

	addr := snap.Listen()
	if f.listen != "" {
		addr = f.listen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if f.debugAddr != "" {
		closing.add("debug server", serveDebug(f.debugAddr, log))
	}
	if f.metricsAddr != "" {
		closing.add("metrics server", serveMetrics(f.metricsAddr, reg, log))
	}
	log.Info("shardproxy listening", "addr", ln.Addr().String(), "databases", strings.Join(snap.DatabaseNames(), ","),
		"config", src.Name(), "revision", doc.Revision)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return shutdown(srv, errc, durationOf(store.Load().Server().DrainTimeout), log)
}

// shutdown drains the client connections for up to drain (default 30s) and waits for Serve.
func shutdown(srv *protocol.Server, errc <-chan error, drain time.Duration, log *slog.Logger) error {
	if drain == 0 {
		drain = 30 * time.Second
	}
	log.Info("shutting down: draining connections", "drain_timeout", drain)
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("drain timeout reached; closed remaining connections", "err", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, protocol.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// protocolOptions are the client-side settings, read once at start (a reload reports
// changes to them as needing a restart).
func protocolOptions(snap *rules.Snapshot, log *slog.Logger) (protocol.Options, error) {
	srvCfg := snap.Server()
	opts := protocol.Options{
		ServerVersion:    srvCfg.Version,
		MaxAllowedPacket: int(srvCfg.MaxAllowedPacket),
		HandshakeTimeout: durationOf(srvCfg.HandshakeTimeout),
		IdleTimeout:      durationOf(srvCfg.IdleTimeout),
		WriteTimeout:     durationOf(srvCfg.WriteTimeout),
		MaxConnections:   srvCfg.MaxConnections,
		Logger:           log,
	}
	if srvCfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(srvCfg.TLSCert, srvCfg.TLSKey)
		if err != nil {
			return protocol.Options{}, fmt.Errorf("TLS: %w", err)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return opts, nil
}

// goOwned runs fn in a goroutine until the returned stop is called; stop cancels fn's
// context and waits for it to return.
func goOwned(ctx context.Context, fn func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// serveDebug serves pprof; the returned func stops it and waits.
func serveDebug(addr string, log *slog.Logger) func() {
	hs := &http.Server{Addr: addr, Handler: http.DefaultServeMux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("debug server stopped", "err", err)
		}
	}()
	return func() {
		_ = hs.Close()
		<-done
	}
}

func durationOf(d rules.Duration) time.Duration { return time.Duration(d) }

func newCheckConfigCmd() *cobra.Command {
	var live bool
	cmd := &cobra.Command{
		Use:   "check-config [--live] FILE",
		Short: "Validate a configuration file and print the resolved layout",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			snap, err := loadSnapshot(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "listen %s\n", snap.Listen())
			for _, b := range snap.Backends() {
				fmt.Fprintf(out, "backend %s %s user=%s\n", b.Name, b.Addr, b.User)
			}
			for _, sh := range snap.Shards() {
				fmt.Fprintf(out, "shard %s primary=%s database=%s replicas=%d\n", sh.Name, sh.Primary.Name, sh.Database, len(sh.Replicas))
			}
			for _, name := range snap.DatabaseNames() {
				db, _ := snap.Database(name)
				fmt.Fprintf(out, "database %s default_shard=%s\n", name, db.DefaultShard.Name)
				for _, tn := range db.TableNames() {
					printTable(out, db.Table(tn))
				}
			}
			for _, u := range snap.Users() {
				plugin, _ := protocol.ParseHash(u.PasswordHash)
				fmt.Fprintf(out, "user %s %s\n", u.Name, plugin)
			}
			fmt.Fprintln(out, "config OK")
			if live {
				if n := checkLive(cmd.Context(), out, snap); n > 0 {
					return fmt.Errorf("live check: %d problem(s)", n)
				}
				fmt.Fprintln(out, "live OK")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&live, "live", false, "also connect to every shard and check that each physical table exists")
	return cmd
}

// printTable writes a table's placement: kind, key, scheme and each physical copy.
func printTable(out io.Writer, t *rules.Table) {
	fmt.Fprintf(out, "  table %s %s", t.Name, t.Kind)
	if t.Kind == rules.KindSharded {
		fmt.Fprintf(out, " key=%s scheme=%s(%s, %d slots)", t.Key, t.Scheme.Name, t.Scheme.Func.Name(), t.Scheme.Func.Slots())
	}
	fmt.Fprintln(out)
	for _, p := range t.Placements() {
		slot := ""
		if p.Slot >= 0 {
			slot = fmt.Sprintf(" slot %d", p.Slot)
		}
		fmt.Fprintf(out, "    %s.%s on %s%s\n", p.Shard.Database, p.Table, p.Shard.Name, slot)
	}
}

func newHashTokenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hash-token [TOKEN]",
		Short: "Print the sha256 of an admin API bearer token (reads it from stdin when not given)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var tok string
			if len(args) == 1 {
				tok = args[0]
			} else if _, err := fmt.Fscanln(cmd.InOrStdin(), &tok); err != nil {
				return fmt.Errorf("reading the token from stdin: %w", err)
			}
			sum := sha256.Sum256([]byte(tok))
			fmt.Fprintln(cmd.OutOrStdout(), hex.EncodeToString(sum[:]))
			return nil
		},
	}
}

func newHashPasswordCmd() *cobra.Command {
	var plugin string
	cmd := &cobra.Command{
		Use:   "hash-password [PASSWORD]",
		Short: "Print a password_hash for a user (reads the password from stdin when not given)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var pw string
			if len(args) == 1 {
				pw = args[0]
			} else {
				var line string
				if _, err := fmt.Fscanln(cmd.InOrStdin(), &line); err != nil {
					return fmt.Errorf("reading the password from stdin: %w", err)
				}
				pw = line
			}
			switch plugin {
			case "caching_sha2_password", "sha2":
				h, err := protocol.HashSha2(pw)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), h)
			case "mysql_native_password", "native":
				fmt.Fprintln(cmd.OutOrStdout(), protocol.HashNative(pw))
			default:
				return fmt.Errorf("--plugin %q: want caching_sha2_password or mysql_native_password", plugin)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&plugin, "plugin", "caching_sha2_password", "caching_sha2_password or mysql_native_password")
	return cmd
}
