package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPoolConfig(t *testing.T) {
	const base = "postgres://latchkey@db.example:5432/latchkey"
	tests := []struct {
		name string
		cfg  Config
		// Each check is what the parsed pool config must show.
		maxConns, minConns int32
		idle, health       time.Duration
		connectTimeout     time.Duration
		appName            string
		searchPath         string
	}{
		{
			name:     "defaults",
			cfg:      Config{URL: base},
			maxConns: DefaultMaxConns, minConns: DefaultMinConns,
			idle: DefaultMaxConnIdleTime, health: DefaultHealthCheckPeriod,
			connectTimeout: DefaultConnectTimeout, appName: "latchkey",
		},
		{
			name:     "URL parameters apply",
			cfg:      Config{URL: base + "?pool_max_conns=3&pool_min_conns=2&pool_max_conn_idle_time=1m&pool_health_check_period=5s&connect_timeout=4&application_name=auth-a"},
			maxConns: 3, minConns: 2, idle: time.Minute, health: 5 * time.Second,
			connectTimeout: 4 * time.Second, appName: "auth-a",
		},
		{
			name:     "fields override the URL",
			cfg:      Config{URL: base + "?pool_max_conns=3&pool_min_conns=2&search_path=other", MaxConns: 20, MinConns: 5, MaxConnIdleTime: time.Hour, HealthCheckPeriod: time.Second, Schema: "Latchkey Auth"},
			maxConns: 20, minConns: 5, idle: time.Hour, health: time.Second,
			connectTimeout: DefaultConnectTimeout, appName: "latchkey", searchPath: `"Latchkey Auth"`,
		},
		{
			name:     "negative MinConns keeps none",
			cfg:      Config{URL: base, MinConns: -1},
			maxConns: DefaultMaxConns, minConns: 0,
			idle: DefaultMaxConnIdleTime, health: DefaultHealthCheckPeriod,
			connectTimeout: DefaultConnectTimeout, appName: "latchkey",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := poolConfig(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if p.MaxConns != tc.maxConns || p.MinConns != tc.minConns {
				t.Errorf("MaxConns, MinConns = %d, %d; want %d, %d", p.MaxConns, p.MinConns, tc.maxConns, tc.minConns)
			}
			if p.MaxConnIdleTime != tc.idle || p.HealthCheckPeriod != tc.health {
				t.Errorf("MaxConnIdleTime, HealthCheckPeriod = %v, %v; want %v, %v", p.MaxConnIdleTime, p.HealthCheckPeriod, tc.idle, tc.health)
			}
			if got := p.ConnConfig.ConnectTimeout; got != tc.connectTimeout {
				t.Errorf("ConnectTimeout = %v, want %v", got, tc.connectTimeout)
			}
			if got := p.ConnConfig.RuntimeParams["application_name"]; got != tc.appName {
				t.Errorf("application_name = %q, want %q", got, tc.appName)
			}
			if tc.searchPath != "" {
				if got := p.ConnConfig.RuntimeParams["search_path"]; got != tc.searchPath {
					t.Errorf("search_path = %q, want %q", got, tc.searchPath)
				}
			}
			for k := range p.ConnConfig.RuntimeParams {
				if strings.HasPrefix(k, "pool_") {
					t.Errorf("pool parameter %s would be sent to the server", k)
				}
			}
		})
	}
}

// TestOpenErrors: a URL that is wrong, or a server that cannot be reached
// or refuses the login, fails Open quickly with an error, and the error
// does not reveal the password.
func TestOpenErrors(t *testing.T) {
	url := testURL(t)
	tests := []struct {
		name string
		cfg  Config
		want string // in the error message
	}{
		{"empty URL", Config{}, "empty URL"},
		{"not a URL", Config{URL: "postgres://latchkey:s3cret@%zz/db"}, "cannot parse"},
		{"bad pool parameter", Config{URL: "postgres://latchkey:s3cret@127.0.0.1/db?pool_max_conns=lots"}, "pool_max_conns"},
		{"MinConns above MaxConns", Config{URL: url, MaxConns: 2, MinConns: 3}, "exceeds MaxConns"},
		{"nobody listening", Config{URL: "postgres://latchkey:s3cret@127.0.0.1:1/test?sslmode=disable"}, "connect"},
		{"unknown database", Config{URL: withParams(t, url, "dbname", randomName("latchkey_missing_"))}, "does not exist"},
		{"unknown role", Config{URL: withParams(t, url, "user", randomName("latchkey_nobody_"), "password", "s3cret")}, "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			s, err := Open(ctx, tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "open postgres: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("Open error = %q, want one starting %q and saying %q", msg, "open postgres: ", tc.want)
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("Open error reveals the password: %q", msg)
			}
			if ctx.Err() != nil {
				t.Errorf("Open took until the test's deadline")
			}
		})
	}
}

func TestCanceledContext(t *testing.T) {
	s := newTestStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.UserByID(ctx, "u1"); !errors.Is(err, context.Canceled) {
		t.Errorf("UserByID(canceled) error = %v, want context.Canceled", err)
	}
}
