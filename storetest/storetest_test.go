package storetest_test

import (
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/storetest"
)

// TestMemoryLimiter runs the Limiter suite on latchkey.MemoryLimiter. It
// lives here rather than in the module root so that the suite's own
// package proves the in-process implementation.
func TestMemoryLimiter(t *testing.T) {
	storetest.RunLimiter(t, func(t *testing.T, now func() time.Time) latchkey.Limiter {
		l := latchkey.NewMemoryLimiter()
		l.Now = now
		return l
	})
}
