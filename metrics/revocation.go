package metrics

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RevocationFeed publishes the age of the revocation list a verifier
// follows, from age (a revocation.Follower's Age): seconds since the feed
// last answered, and +Inf before it ever has, so that one alert on
// "older than N seconds" covers a feed that stopped and one that never
// started. It takes a function rather than the Follower so that this
// package needs nothing of the verifier's.
func (m *Metrics) RevocationFeed(service string, age func() (time.Duration, bool)) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "latchkey_revocation_feed_age_seconds",
		Help:        "Seconds since the revocation feed last answered (a list or a 304); +Inf before the first list.",
		ConstLabels: prometheus.Labels{"service": service},
	}, func() float64 {
		d, ok := age()
		if !ok {
			return math.Inf(1)
		}
		return d.Seconds()
	}))
}
