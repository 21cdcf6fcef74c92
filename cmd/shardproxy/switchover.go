package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newSwitchoverCmd is `shardproxy switchover --shard S [--to B]`: a planned switchover through
// a running proxy's admin API (POST /api/v1/shards/{name}/switchover, admin role).
func newSwitchoverCmd() *cobra.Command {
	var shard, to, addr, cacert string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "switchover --shard NAME [--to BACKEND]",
		Short: "Move a shard's primary to one of its replicas through a running proxy, failing no client statement",
		Long: "Asks the running proxy (its admin API at --admin, with the admin token in $SHARDPROXY_ADMIN_TOKEN) to hold new\n" +
			"statements for the shard, wait until the replica applied everything, promote it, repoint the old primary and the\n" +
			"other replicas to it and release the statements. Prints the result as JSON.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			token := os.Getenv("SHARDPROXY_ADMIN_TOKEN")
			if token == "" {
				return fmt.Errorf("switchover: set SHARDPROXY_ADMIN_TOKEN to an admin token of the proxy")
			}
			base := addr
			if !strings.Contains(base, "://") {
				base = "http://" + base
				if cacert != "" {
					base = "https://" + addr
				}
			}
			u := strings.TrimRight(base, "/") + "/api/v1/shards/" + url.PathEscape(shard) + "/switchover"
			if to != "" {
				u += "?to=" + url.QueryEscape(to)
			}
			client, err := adminClient(cacert, timeout)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("switchover: %w", err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				return fmt.Errorf("switchover: reading the answer: %w", err)
			}
			if resp.StatusCode != http.StatusOK {
				var e struct{ Error string }
				if json.Unmarshal(body, &e) == nil && e.Error != "" {
					return fmt.Errorf("switchover: %s (HTTP %d)", e.Error, resp.StatusCode)
				}
				return fmt.Errorf("switchover: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
			}
			_, err = cmd.OutOrStdout().Write(append(body, '\n'))
			return err
		},
	}
	cmd.Flags().StringVar(&shard, "shard", "", "the shard whose primary moves")
	cmd.Flags().StringVar(&to, "to", "", "the replica to promote (default: the shard's first replica that is up and replicating)")
	cmd.Flags().StringVar(&addr, "admin", "127.0.0.1:9090", "the proxy's admin API address (host:port or URL)")
	cmd.Flags().StringVar(&cacert, "admin-cacert", "", "PEM CA certificate of the admin API's TLS certificate (https)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up waiting for the answer after this long")
	_ = cmd.MarkFlagRequired("shard")
	return cmd
}

// adminClient is an HTTP client for the admin API, trusting cacert when given.
func adminClient(cacert string, timeout time.Duration) (*http.Client, error) {
	c := &http.Client{Timeout: timeout}
	if cacert == "" {
		return c, nil
	}
	pem, err := os.ReadFile(cacert)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("switchover: no certificate in %s", cacert)
	}
	c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return c, nil
}
