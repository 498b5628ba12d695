package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/latchkey-dev/latchkey/metrics"
)

// startMetrics serves /metrics on LATCHKEY_METRICS_ADDR, and only there:
// the series are for the operator's Prometheus, not for the clients of
// the API port. Without the setting nothing is collected or served. The
// server stops with ctx.
func startMetrics(ctx context.Context, cfg *config, logger *slog.Logger) error {
	if cfg.MetricsAddr == "" {
		return nil
	}
	ln, err := listen("LATCHKEY_METRICS_ADDR", cfg.MetricsAddr)
	if err != nil {
		return err
	}
	cfg.metrics = metrics.New()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", cfg.metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout, WriteTimeout: writeTimeout}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	logger.Info("metrics", "addr", ln.Addr().String())
	return nil
}
