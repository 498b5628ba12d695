package postgres

import (
	"testing"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/pgdb/pgdbtest"
	"github.com/latchkey-dev/latchkey/storetest"
)

// TestStore runs the conformance suite, each subtest in a fresh schema.
func TestStore(t *testing.T) {
	pgdbtest.URL(t) // skip once, not in every subtest
	storetest.Run(t, func(t *testing.T) latchkey.Store {
		return newTestStore(t)
	})
}
