// Package metrics exposes Latchkey's Prometheus series (the contract's
// Operations section): requests by route pattern and status with their
// latency, logins and refreshes by outcome, revocations, verification
// failures by reason, and signing keys by state. Series are labelled with
// route patterns and fixed outcome words only, never raw paths, user ids
// or token contents, so their number stays small.
//
// A Metrics holds its own registry: nothing is global, and two servers in
// one process (latchkey demo) each register their own.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/bearer"
	"github.com/latchkey-dev/latchkey/token"
)

// Metrics is one process's series.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	logins      *prometheus.CounterVec
	refreshes   *prometheus.CounterVec
	revocations *prometheus.CounterVec
	refusals    *prometheus.CounterVec
}

// New returns Metrics with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_http_requests_total", Help: "HTTP requests by service, route pattern and status code.",
		}, []string{"service", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "latchkey_http_request_duration_seconds", Help: "HTTP request latency by service and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"service", "route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_logins_total", Help: "Logins by outcome: succeeded, failed, throttled, mfa_failed (a wrong second-factor code).",
		}, []string{"outcome"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_refreshes_total", Help: "Refresh-token exchanges by outcome: succeeded, invalid_grant, reuse_detected.",
		}, []string{"outcome"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_revocations_total", Help: "Revocations by cause: logout, logout_all, reuse, admin, user_updated, password_reset, password_changed, session_ended.",
		}, []string{"cause"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_token_refusals_total", Help: "Access tokens refused by the bearer middleware, by reason.",
		}, []string{"service", "reason"}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.logins, m.refreshes, m.revocations, m.refusals,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the series in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Keys publishes the key ring's keys by state.
func (m *Metrics) Keys(ring *latchkey.KeyRing) {
	for _, st := range []latchkey.KeyState{latchkey.KeyNext, latchkey.KeyActive, latchkey.KeyRetired, latchkey.KeyWithdrawn} {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "latchkey_signing_keys", Help: "Stored signing keys by state.", ConstLabels: prometheus.Labels{"state": string(st)},
		}, func() float64 { return float64(ring.States()[st]) }))
	}
}

// HTTP counts every request of service through h by route pattern and
// status. It must wrap the handler that holds the ServeMux, inside any
// middleware that copies the request: the mux records the matched pattern
// on the request it is given, which HTTP reads after the handler returns.
func (m *Metrics) HTTP(service string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &status{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched" // never the raw path: any client could make series
		}
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		m.requests.WithLabelValues(service, route, strconv.Itoa(rec.code)).Inc()
		m.duration.WithLabelValues(service, route).Observe(time.Since(start).Seconds())
		if route == "POST /token" || route == "POST /session/refresh" {
			switch {
			case rec.code == http.StatusOK:
				m.refreshes.WithLabelValues("succeeded").Inc()
			case rec.code == http.StatusUnauthorized:
				m.refreshes.WithLabelValues("invalid_grant").Inc()
			}
		}
	})
}

// auditCounts says which series each audit event type counts in: a
// login outcome, a revocation cause, or both (reuse is a refresh outcome
// and a revocation).
var auditCounts = map[latchkey.AuditType]struct{ login, refresh, revocation string }{
	latchkey.AuditLoginSucceeded:       {login: "succeeded"},
	latchkey.AuditLoginFailed:          {login: "failed"},
	latchkey.AuditLoginThrottled:       {login: "throttled"},
	latchkey.AuditMFAFailed:            {login: "mfa_failed"},
	latchkey.AuditRefreshReuseDetected: {refresh: "reuse_detected", revocation: "reuse"},
	latchkey.AuditLogout:               {revocation: "logout"},
	latchkey.AuditLogoutAll:            {revocation: "logout_all"},
	latchkey.AuditSessionsRevoked:      {revocation: "admin"},
	latchkey.AuditUserUpdated:          {revocation: "user_updated"},
	latchkey.AuditPasswordReset:        {revocation: "password_reset"},
	latchkey.AuditPasswordChanged:      {revocation: "password_changed"},
	latchkey.AuditSessionEnded:         {revocation: "session_ended"},
}

// Audit counts what the audit log records: logins by outcome, reuse and
// revocations. Pass it to latchkey.AuditLog.Observe.
func (m *Metrics) Audit(e latchkey.AuditEvent) {
	c := auditCounts[e.Type]
	if c.login != "" {
		m.logins.WithLabelValues(c.login).Inc()
	}
	if c.refresh != "" {
		m.refreshes.WithLabelValues(c.refresh).Inc()
	}
	if c.revocation != "" {
		m.revocations.WithLabelValues(c.revocation).Inc()
	}
}

// Refusals returns a bearer option that counts refused tokens of service
// by reason.
func (m *Metrics) Refusals(service string) bearer.Option {
	return bearer.WithRefusals(func(_ context.Context, reason error) {
		m.refusals.WithLabelValues(service, Reason(reason)).Inc()
	})
}

// Reason names why a token was refused, from a fixed list.
func Reason(err error) string {
	switch {
	case errors.Is(err, bearer.ErrNoCredentials):
		return "missing"
	case errors.Is(err, token.ErrExpired):
		return "expired"
	case errors.Is(err, token.ErrNotYetValid):
		return "not_yet_valid"
	case errors.Is(err, token.ErrSignature):
		return "signature"
	case errors.Is(err, token.ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, token.ErrAlgorithm):
		return "algorithm"
	case errors.Is(err, token.ErrIssuer):
		return "issuer"
	case errors.Is(err, token.ErrAudience):
		return "audience"
	case errors.Is(err, token.ErrMalformed), errors.Is(err, token.ErrTooLarge):
		return "malformed"
	case errors.Is(err, latchkey.ErrSessionRevoked), errors.Is(err, token.ErrRevoked):
		return "revoked"
	}
	return "other"
}

// status remembers the code a handler wrote.
type status struct {
	http.ResponseWriter
	code int
}

func (s *status) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *status) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *status) Unwrap() http.ResponseWriter { return s.ResponseWriter }
