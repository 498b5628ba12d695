package metrics_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/metrics"
	"github.com/latchkey-dev/latchkey/token"
)

func TestRevocationFeedAge(t *testing.T) {
	m := metrics.New()
	var age time.Duration
	loaded := false
	m.RevocationFeed("books", func() (time.Duration, bool) { return age, loaded })
	if out := scrape(t, m); !strings.Contains(out, `latchkey_revocation_feed_age_seconds{service="books"} +Inf`) {
		t.Errorf("before the first list, want +Inf:\n%s", grep(out, "revocation_feed"))
	}
	age, loaded = 1500*time.Millisecond, true
	if out := scrape(t, m); !strings.Contains(out, `latchkey_revocation_feed_age_seconds{service="books"} 1.5`) {
		t.Errorf("with a list 1.5 s old:\n%s", grep(out, "revocation_feed"))
	}
	if r := metrics.Reason(fmt.Errorf("verify: %w", token.ErrRevoked)); r != "revoked" {
		t.Errorf("a token the feed lists is counted as %q, want revoked", r)
	}
}

func grep(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
