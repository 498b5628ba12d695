package postgres

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/pgdb/pgdbtest"
	"github.com/latchkey-dev/latchkey/sqlite"
)

// BenchmarkStores measures the refresh path's two store calls,
// SessionAndUserByTokenHash and RotateRefreshToken, on SQLite (a file,
// synchronous=FULL, as served) and on PostgreSQL, empty and seeded with
// LATCHKEY_BENCH_SESSIONS sessions (default 1,000,000, two tokens each,
// one user per ten sessions; 0 leaves the seeded case out), all in one
// run so that their ratios mean something on a shared machine. PostgreSQL
// also gets the ceiling of any statement: SELECT 1 through the same pool.
//
//	LATCHKEY_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	go test -run '^$' -bench Stores -benchtime 3s ./postgres
//
// Sequential cases report p50 and p99 latency besides the mean; parallel
// ones run 8 goroutines per CPU, each rotating a session of its own.
func BenchmarkStores(b *testing.B) {
	url := pgdbtest.URL(b)
	seeded := 1_000_000
	if v := os.Getenv("LATCHKEY_BENCH_SESSIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			b.Fatalf("LATCHKEY_BENCH_SESSIONS=%q: want a count", v)
		}
		seeded = n
	}

	type backend struct {
		name  string
		store latchkey.Store
		pg    *Store // nil for SQLite
		// lookup returns the hash of an existing token to look up.
		lookup func(r *rand.Rand) []byte
	}
	var backends []backend

	lite, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "latchkey.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lite.Close() })
	backends = append(backends, backend{name: "sqlite", store: lite})

	empty := newTestStore(b)
	backends = append(backends, backend{name: "postgres", store: empty, pg: empty})

	if seeded > 0 {
		schema := pgdbtest.Schema(b)
		big := mustOpen(b, Config{URL: url, Schema: schema})
		admin := pgdbtest.Admin(b, url)
		began := time.Now()
		seed(b, admin, schema, seedSpec{users: max(seeded/10, 1), sessions: seeded})
		var size string
		if err := admin.QueryRow(b.Context(), `SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid)))
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relkind = 'r'`, schema).Scan(&size); err != nil {
			b.Fatal(err)
		}
		b.Logf("seeded %d users, %d sessions, %d tokens in %v: %s with indexes",
			max(seeded/10, 1), seeded, 2*seeded, time.Since(began).Round(time.Second), size)
		backends = append(backends, backend{
			name: fmt.Sprintf("postgres-seeded-%d", seeded), store: big, pg: big,
			lookup: func(r *rand.Rand) []byte {
				prev, cur := seedTokens(r.IntN(seeded))
				if r.IntN(2) == 0 {
					return prev
				}
				return cur
			},
		})
	}

	for _, be := range backends {
		fx := newBenchFixture(b, be.store)
		lookup := be.lookup
		if lookup == nil {
			lookup = func(r *rand.Rand) []byte { return fx.first[r.IntN(len(fx.first))] }
		}
		b.Run(be.name+"/SessionAndUserByTokenHash", func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			hashes := make([][]byte, 4096)
			for i := range hashes {
				hashes[i] = lookup(r)
			}
			lat := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				began := time.Now()
				if _, _, err := be.store.SessionAndUserByTokenHash(b.Context(), hashes[i%len(hashes)]); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(began))
			}
			reportLatency(b, lat)
		})
		b.Run(be.name+"/RotateRefreshToken", func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				began := time.Now()
				fx.rotate(b, 0)
				lat = append(lat, time.Since(began))
			}
			reportLatency(b, lat)
		})
		b.Run(be.name+"/RotateRefreshTokenParallel", func(b *testing.B) {
			var next atomic.Int64
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				k := int(next.Add(1)) // session 0 is the sequential case's
				if k >= len(fx.chains) {
					b.Error("more goroutines than fixture sessions")
					return
				}
				for pb.Next() {
					fx.rotate(b, k)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rotations/s")
		})
		if be.pg != nil {
			b.Run(be.name+"/ceiling-SELECT-1", func(b *testing.B) {
				var one int
				for b.Loop() {
					if err := be.pg.pool.QueryRow(b.Context(), `SELECT 1`).Scan(&one); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// benchFixture is one user and sessions whose token chains the
// benchmarks rotate; each chain is rotated by one goroutine only.
type benchFixture struct {
	s      latchkey.Store
	chains []benchChain
	first  [][]byte // every session's first token, findable for good
}

type benchChain struct {
	id      string
	k       int
	current []byte
}

const benchFixtureSessions = 64

func newBenchFixture(tb testing.TB, s latchkey.Store) *benchFixture {
	tb.Helper()
	ctx := tb.Context()
	if err := s.CreateUser(ctx, &latchkey.User{ID: "bench", Username: "bench", Role: latchkey.RoleMember, PasswordHash: "h", CreatedAt: t0}); err != nil {
		tb.Fatal(err)
	}
	fx := &benchFixture{s: s}
	for i := range benchFixtureSessions {
		id := fmt.Sprint("bench-", i)
		h := tokenHash(id + "/0")
		if err := s.CreateSession(ctx, &latchkey.Session{ID: id, UserID: "bench", CreatedAt: t0, LastUsedAt: t0,
			ExpiresAt: t0.Add(7 * 24 * time.Hour), CurrentHash: h}); err != nil {
			tb.Fatal(err)
		}
		fx.chains = append(fx.chains, benchChain{id: id, current: h})
		fx.first = append(fx.first, h)
	}
	return fx
}

// rotate moves chain k one token on.
func (fx *benchFixture) rotate(tb testing.TB, k int) {
	c := &fx.chains[k]
	c.k++
	next := tokenHash(fmt.Sprintf("%s/%d", c.id, c.k))
	at := t0.Add(time.Duration(c.k) * time.Microsecond)
	err := fx.s.RotateRefreshToken(tb.Context(), latchkey.Rotation{SessionID: c.id, OldHash: c.current, NewHash: next,
		SealedSuccessor: make([]byte, 71), At: at, ExpiresAt: at.Add(7 * 24 * time.Hour)})
	if err != nil {
		tb.Fatalf("rotate %s #%d: %v", c.id, c.k, err)
	}
	c.current = next
}

// reportLatency adds the p50 and p99 of lat to b's results.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
}
