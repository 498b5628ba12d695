// Command refreshload is the load client scripts/load.sh uses for what wrk
// cannot do: rotating refresh tokens, logging in, and timing argon2id on its
// own. Each mode runs for -duration and prints one line
//
//	RESULT mode=M ops=N seconds=S rate=R p50_ms=A p99_ms=B errors=E limited=L
//
// Modes:
//
//   - refresh: logs in -sessions times (one session each), then runs one
//     goroutine per session for -duration, each POSTing its session's current
//     refresh token to /token and keeping the new one, so every request is a
//     real rotation of its own chain (no grace-window replays).
//   - login: -workers goroutines POST /login with the given credentials for
//     -duration. Logins are spread over -source-ips loopback source addresses
//     (127.0.0.10, 127.0.0.11, ...) because the server rate-limits per
//     client address (burst 30); a correct password resets the per-user count.
//   - hash: -workers goroutines call latchkey.HashPassword with DefaultArgon2
//     for -duration, in this process: the argon2id cost a login pays, for
//     the login/hash ratio. Pin it to the server's core.
//
// Every loop is bounded by -duration, and the client talks to loopback only.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey-dev/latchkey"
)

func main() {
	mode := flag.String("mode", "refresh", "refresh, login or hash")
	base := flag.String("url", "http://127.0.0.1:3000", "auth server base URL (loopback)")
	user := flag.String("user", "anna", "username")
	pass := flag.String("password", "password123member", "password")
	sessions := flag.Int("sessions", 32, "refresh: sessions, one goroutine each")
	workers := flag.Int("workers", 4, "login, hash: concurrent goroutines")
	sourceIPs := flag.Int("source-ips", 32, "login and session setup: loopback source addresses to spread logins over")
	duration := flag.Duration("duration", 10*time.Second, "how long to run")
	flag.Parse()

	var err error
	switch *mode {
	case "refresh":
		err = runRefresh(*base, *user, *pass, *sessions, *sourceIPs, *duration)
	case "login":
		err = runLogin(*base, *user, *pass, *workers, *sourceIPs, *duration)
	case "hash":
		err = runHash(*workers, *duration)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "refreshload:", err)
		os.Exit(1)
	}
}

// clients returns n HTTP clients, each dialing from its own loopback source
// address 127.0.0.(10+i), with keep-alive connections, at most conns each.
// The bound keeps the server's connection count at the load's concurrency:
// without it a Transport dials a new connection whenever a finished one has
// not yet gone back to its pool, and 256 login workers held about 600.
func clients(n, conns int) []*http.Client {
	out := make([]*http.Client, n)
	for i := range out {
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(10+i%200))}}
		out[i] = &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns},
		}
	}
	return out
}

type tokens struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
}

var errLimited = errors.New("rate limited")

func post(c *http.Client, url string, body any) (*tokens, error) {
	b, _ := json.Marshal(body)
	resp, err := c.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return nil, errLimited
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d: %s", url, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	var t tokens
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, err
	}
	if t.AccessToken == "" || t.RefreshToken == "" {
		return nil, fmt.Errorf("%s: no tokens in %s", url, data)
	}
	return &t, nil
}

// loop runs n goroutines calling op until d has passed, and reports the
// count, rate and latency percentiles of the calls that succeeded.
func loop(mode string, n int, d time.Duration, op func(ctx context.Context, worker, i int) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		lat     []time.Duration
		errs    atomic.Int64
		limited atomic.Int64
		first   atomic.Value
	)
	start := time.Now()
	for w := range n {
		wg.Go(func() {
			var mine []time.Duration
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				err := op(ctx, w, i)
				switch {
				case err == nil:
					mine = append(mine, time.Since(t0))
				case errors.Is(err, errLimited):
					limited.Add(1)
				case ctx.Err() != nil:
					// cut off by the deadline: not counted
				default:
					errs.Add(1)
					first.CompareAndSwap(nil, err.Error())
					time.Sleep(10 * time.Millisecond) // no hot loop on a dead server
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	fmt.Printf("RESULT mode=%s ops=%d seconds=%.2f rate=%.1f p50_ms=%.3f p99_ms=%.3f errors=%d limited=%d\n",
		mode, len(lat), elapsed, float64(len(lat))/elapsed, pct(0.50), pct(0.99), errs.Load(), limited.Load())
	if e := first.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "refreshload: first error:", e)
	}
	if len(lat) == 0 {
		return errors.New("no operation succeeded")
	}
	return nil
}

func runRefresh(base, user, pass string, n, ips int, d time.Duration) error {
	cs := clients(ips, n)
	creds := map[string]string{"username": user, "password": pass}
	current := make([]string, n)
	for i := range current {
		t, err := post(cs[i%len(cs)], base+"/login", creds)
		if err != nil {
			return fmt.Errorf("login for session %d: %w", i, err)
		}
		current[i] = t.RefreshToken
	}
	// One client for the refresh traffic: /token is not rate-limited.
	c := cs[0]
	return loop("refresh", n, d, func(_ context.Context, w, _ int) error {
		t, err := post(c, base+"/token", map[string]string{"refreshToken": current[w]})
		if err != nil {
			return err
		}
		current[w] = t.RefreshToken
		return nil
	})
}

func runLogin(base, user, pass string, n, ips int, d time.Duration) error {
	// Each worker logs in from one address, so that each client's
	// connections are its workers'.
	cs := clients(ips, (n+ips-1)/ips)
	creds := map[string]string{"username": user, "password": pass}
	return loop("login", n, d, func(_ context.Context, w, _ int) error {
		_, err := post(cs[w%len(cs)], base+"/login", creds)
		return err
	})
}

func runHash(n int, d time.Duration) error {
	return loop("hash", n, d, func(context.Context, int, int) error {
		latchkey.HashPassword("password123member", latchkey.DefaultArgon2)
		return nil
	})
}
