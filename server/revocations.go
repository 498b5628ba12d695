package server

import (
	"bytes"
	"compress/gzip"
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
	copy     *feedCopy
	building bool // one poller rebuilds; the others serve the copy in hand
}

// feedCopy is one built feed: the JSON, the same gzipped (a feed of
// 10,000 entries is 910 KB, 209 KB compressed, and every verifier fetches
// it whenever it changes), and the ETag of its entries.
type feedCopy struct {
	body, gz []byte
	etag     string
}

// current returns the feed, rebuilding it when it is older than
// feedRefresh. The database is read outside the lock: while one poller
// rebuilds, the others get the previous copy at once, so a slow database
// delays one poll a replica, not all of them. Only the first poll of a
// replica, with no copy yet, waits for its own read.
func (f *feed) current(r *http.Request) (*feedCopy, error) {
	f.mu.Lock()
	if f.copy != nil && (f.building || f.now().Sub(f.built) < feedRefresh) {
		c := f.copy
		f.mu.Unlock()
		return c, nil
	}
	f.building = true
	f.mu.Unlock()
	c, err := f.rebuild(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.building = false
	if err != nil {
		return nil, err
	}
	f.copy, f.built = c, f.now()
	return c, nil
}

func (f *feed) rebuild(r *http.Request) (*feedCopy, error) {
	doc, err := f.svc.Revocations(r.Context())
	if err != nil {
		return nil, err
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
		return nil, err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &feedCopy{body: body, gz: gz.Bytes(), etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}, nil
}

func handleRevocations(f *feed) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := f.current(r)
		if err != nil {
			return err
		}
		h := w.Header()
		h.Set("ETag", c.etag)
		// Verifiers revalidate on every poll; a cache must not answer for us.
		h.Set("Cache-Control", "no-cache")
		h.Set("Vary", "Accept-Encoding")
		if etagMatches(r.Header.Get("If-None-Match"), c.etag) {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		h.Set("Content-Type", "application/json")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			w.Write(c.gz)
			return nil
		}
		w.Write(c.body)
		return nil
	}
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip
// (RFC 9110 12.5.3): listed, and not with q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
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
