package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/rules/source"
)

// etcdPasswordEnv names the environment variable holding the etcd password (never a flag:
// command lines are visible to every local user).
const etcdPasswordEnv = "SHARDPROXY_ETCD_PASSWORD"

// sourceFlags choose the configuration source: a file (--config) or etcd.
type sourceFlags struct {
	config        string
	etcdEndpoints []string
	etcdPrefix    string
	etcdCA        string
	etcdCert      string
	etcdKey       string
	etcdUser      string
	lastKnownGood string
}

func (f *sourceFlags) addEtcd(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.etcdEndpoints, "etcd-endpoints", nil, "etcd endpoints (host:port or URLs, comma-separated): read the configuration from etcd and watch it")
	fs.StringVar(&f.etcdPrefix, "etcd-prefix", source.DefaultPrefix, "etcd key prefix of this proxy fleet's configuration")
	fs.StringVar(&f.etcdCA, "etcd-cacert", "", "PEM CA bundle to verify etcd's certificate (enables TLS)")
	fs.StringVar(&f.etcdCert, "etcd-cert", "", "PEM client certificate for etcd (with --etcd-key; enables TLS)")
	fs.StringVar(&f.etcdKey, "etcd-key", "", "PEM client key for etcd")
	fs.StringVar(&f.etcdUser, "etcd-user", "", "etcd user name; the password is read from $"+etcdPasswordEnv)
}

func (f *sourceFlags) etcdTLS() (*tls.Config, error) {
	if f.etcdCA == "" && f.etcdCert == "" && f.etcdKey == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.etcdCA != "" {
		pem, err := os.ReadFile(f.etcdCA)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cacert: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-cacert %s: no PEM certificate", f.etcdCA)
		}
	}
	if (f.etcdCert == "") != (f.etcdKey == "") {
		return nil, errors.New("--etcd-cert and --etcd-key go together")
	}
	if f.etcdCert != "" {
		cert, err := tls.LoadX509KeyPair(f.etcdCert, f.etcdKey)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (f *sourceFlags) openEtcd(log *slog.Logger) (*source.Etcd, error) {
	if len(f.etcdEndpoints) == 0 {
		return nil, errors.New("--etcd-endpoints is required")
	}
	tc, err := f.etcdTLS()
	if err != nil {
		return nil, err
	}
	o := source.EtcdOptions{Endpoints: f.etcdEndpoints, Prefix: f.etcdPrefix, TLS: tc, Logger: log}
	if f.etcdUser != "" {
		o.Username, o.Password = f.etcdUser, os.Getenv(etcdPasswordEnv)
	}
	return source.NewEtcd(o)
}

// open returns the configuration source and the extra check its documents get.
func (f *sourceFlags) open(log *slog.Logger) (source.Source, func(), func([]byte) error, error) {
	switch {
	case f.config != "" && len(f.etcdEndpoints) > 0:
		return nil, nil, nil, errors.New("--config and --etcd-endpoints are exclusive")
	case f.config != "":
		fs := source.NewFile(f.config)
		return fs, func() { _ = fs.Close() }, nil, nil
	case len(f.etcdEndpoints) > 0:
		e, err := f.openEtcd(log)
		if err != nil {
			return nil, nil, nil, err
		}
		return e, func() { _ = e.Close() }, noPlaintextSecrets, nil
	}
	return nil, nil, nil, errors.New("either --config FILE or --etcd-endpoints is required")
}

// noPlaintextSecrets refuses a document for etcd that holds a backend password in clear:
// etcd documents name secrets (password_env) instead.
func noPlaintextSecrets(data []byte) error {
	cfg, err := rules.Parse(data)
	if err != nil {
		return err
	}
	for _, b := range cfg.Backends {
		if b.Password != "" {
			return fmt.Errorf("%w: backend %q: a plaintext password must not be stored in etcd; use password_env", rules.ErrInvalid, b.Name)
		}
	}
	return nil
}

// anySecret resolves every secret name: validation on a machine without the proxy's secrets.
var anySecret = rules.SecretsFunc(func(string) (string, bool) { return "unchecked", true })

// initialLoad reads and builds the first configuration. If the source cannot be read or
// its document is invalid, the last-known-good copy (if any) is used instead, and the log
// says so; pending then tells the reload loop to keep trying the source.
func initialLoad(ctx context.Context, src source.Source, check func([]byte) error, sec rules.Secrets, lkg source.LastKnownGood, log *slog.Logger) (doc source.Doc, snap *rules.Snapshot, fromLKG bool, err error) {
	build := func(data []byte) (*rules.Snapshot, error) {
		if check != nil {
			if err := check(data); err != nil {
				return nil, err
			}
		}
		return buildSnapshot(data, sec)
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	doc, err = src.Fetch(fctx)
	cancel()
	if err == nil {
		snap, err = build(doc.Data)
		if err == nil {
			if serr := lkg.Save(src.Name(), doc); serr != nil {
				log.Warn("could not save the last-known-good configuration", "err", serr)
			}
			return doc, snap, false, nil
		}
	}
	err = fmt.Errorf("%s: %w", src.Name(), err)
	if lkg.Path == "" {
		return source.Doc{}, nil, false, err
	}
	ldoc, lerr := lkg.Load()
	if lerr != nil {
		return source.Doc{}, nil, false, fmt.Errorf("%w; and no last-known-good copy: %w", err, lerr)
	}
	if snap, lerr = build(ldoc.Data); lerr != nil {
		return source.Doc{}, nil, false, fmt.Errorf("%w; and the last-known-good copy %s is invalid: %w", err, lkg.Path, lerr)
	}
	log.Warn("configuration source unusable at start-up: serving the last-known-good copy until it is back",
		"source", src.Name(), "file", lkg.Path, "revision", ldoc.Revision, "err", err)
	return ldoc, snap, true, nil
}

func newConfigCmd() *cobra.Command {
	var f sourceFlags
	cmd := &cobra.Command{Use: "config", Short: "Read or write the configuration in etcd"}
	f.addEtcd(cmd.PersistentFlags())
	var expect int64
	push := &cobra.Command{
		Use:   "push FILE",
		Short: "Validate FILE and write it to etcd in one transaction",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if err := noPlaintextSecrets(data); err != nil {
				return fmt.Errorf("%s: refused: %w", args[0], err)
			}
			if _, err := buildSnapshot(data, anySecret); err != nil {
				return fmt.Errorf("%s: refused: %w", args[0], err)
			}
			e, err := f.openEtcd(slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			defer e.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			rev, err := e.Push(ctx, data, expect)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pushed %s to %s%s at revision %d\n", args[0], e.Prefix(), source.KeyConfig, rev)
			return nil
		},
	}
	push.Flags().Int64Var(&expect, "expect-revision", -1, "write only if the live document is still at this revision (0: none yet); -1: unconditionally")
	get := &cobra.Command{
		Use:   "get",
		Short: "Print the configuration in etcd, with its revision",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := f.openEtcd(slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			defer e.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			doc, err := e.Fetch(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "# %s%s revision %d sha256 %s\n", e.Prefix(), source.KeyConfig, doc.Revision, doc.Digest)
			if m, ok, err := e.Meta(ctx); err == nil && ok {
				fmt.Fprintf(out, "# pushed %s from %s\n", m.PushedAt.Format(time.RFC3339), m.Host)
			}
			data := string(doc.Data)
			if !strings.HasSuffix(data, "\n") {
				data += "\n"
			}
			fmt.Fprint(out, data)
			return nil
		},
	}
	cmd.AddCommand(push, get)
	return cmd
}
