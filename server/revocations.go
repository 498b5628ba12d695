package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// feedRefresh is how often the revocation feed is read from the database
// at most, whatever the number of verifiers polling it: a thousand
// verifiers polling every two seconds cost one query a second per replica.
const feedRefresh = time.Second

type feedSession struct {
	SID       string `json:"sid"`
	RevokedAt string `json:"revokedAt"`
}

// feedUser refuses the user's tokens whose "gen" is below Gen.
type feedUser struct {
	Sub       string `json:"sub"`
	Gen       int64  `json:"gen"`
	RevokedAt string `json:"revokedAt"`
}

type feedJSON struct {
	Issuer      string        `json:"issuer"`
	GeneratedAt string        `json:"generatedAt"`
	Sessions    []feedSession `json:"sessions"`
	Users       []feedUser    `json:"users"`
}

// feed serves GET /.well-known/revocations from memory, rebuilt from the
// database at most once per feedRefresh. The ETag is a hash of the entries
// alone, not of generatedAt, so every replica on one database gives the
// same ETag for the same entries and a verifier's If-None-Match keeps
// getting 304 until something is revoked or an entry ages out.
type feed struct {
	svc *latchkey.Service
	now func() time.Time

	mu       sync.Mutex
	built    time.Time
	body     []byte
	etag     string
	building bool // one poller rebuilds; the others serve the copy in hand
}

// current returns the feed, rebuilding it when it is older than
// feedRefresh. The database is read outside the lock: while one poller
// rebuilds, the others get the previous copy at once, so a slow database
// delays one poll a replica, not all of them. Only the first poll of a
// replica, with no copy yet, waits for its own read.
func (f *feed) current(r *http.Request) ([]byte, string, error) {
	f.mu.Lock()
	if f.body != nil && (f.building || f.now().Sub(f.built) < feedRefresh) {
		body, etag := f.body, f.etag
		f.mu.Unlock()
		return body, etag, nil
	}
	f.building = true
	f.mu.Unlock()
	body, etag, err := f.rebuild(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.building = false
	if err != nil {
		return nil, "", err
	}
	f.body, f.etag, f.built = body, etag, f.now()
	return body, etag, nil
}

func (f *feed) rebuild(r *http.Request) ([]byte, string, error) {
	doc, err := f.svc.Revocations(r.Context())
	if err != nil {
		return nil, "", err
	}
	out := feedJSON{Issuer: doc.Issuer, GeneratedAt: rfc3339(doc.GeneratedAt),
		Sessions: make([]feedSession, 0, len(doc.Sessions)), Users: make([]feedUser, 0, len(doc.Users))}
	for _, s := range doc.Sessions {
		out.Sessions = append(out.Sessions, feedSession{SID: s.ID, RevokedAt: rfc3339(s.RevokedAt)})
	}
	for _, u := range doc.Users {
		out.Users = append(out.Users, feedUser{Sub: u.UserID, Gen: u.Generation, RevokedAt: rfc3339(u.At)})
	}
	entries, _ := json.Marshal(struct {
		S []feedSession
		U []feedUser
	}{out.Sessions, out.Users})
	sum := sha256.Sum256(entries)
	body, err := json.Marshal(out)
	if err != nil {
		return nil, "", err
	}
	return body, `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`, nil
}

func handleRevocations(f *feed) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, etag, err := f.current(r)
		if err != nil {
			return err
		}
		w.Header().Set("ETag", etag)
		// Verifiers revalidate on every poll; a cache must not answer for us.
		w.Header().Set("Cache-Control", "no-cache")
		if etagMatches(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
		return nil
	}
}

// etagMatches applies If-None-Match (RFC 9110 13.1.2): a list of
// entity tags, weak or strong, or "*".
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
