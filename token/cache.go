package token

import (
	"sync"
	"sync/atomic"
	"time"
)

// cache holds verified claims by exact token string. It is split into
// shards so that concurrent requests, which almost always hit, do not all
// contend on one lock. It runs no goroutines: expired entries are dropped
// when met or when room is needed.
type cache struct {
	shards []cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	max     int
	entries map[string]cacheEntry
	_       [32]byte // keeps neighbouring shards' locks off one cache line
}

type cacheEntry struct {
	claims  *Claims // never handed out; callers get clones
	window          // precomputed, as the hit path runs on every request
	version uint64  // the key source's version before the key was looked up; 0 for a source without versions
	// passed is the Verifier's Revoker version (plus one) under which the
	// token last passed the revocation check; nil without a Revoker. It is
	// shared by every copy of the entry, so a hit updates it without the
	// shard's write lock.
	passed *atomic.Uint64
}

// evictScan is how many entries an insert into a full shard looks at for an
// expired one before evicting an arbitrary one. Tokens are short-lived and of
// roughly equal worth, so random eviction loses little against LRU and needs
// no bookkeeping on the read path.
const evictScan = 8

func newCache(size int) *cache {
	n := 1
	if size >= 1024 {
		n = 16
	}
	c := &cache{shards: make([]cacheShard, n)}
	for i := range c.shards {
		c.shards[i].max = max(size/n, 1)
		c.shards[i].entries = make(map[string]cacheEntry)
	}
	return c
}

// shard picks a shard from two characters near the end of the token, which
// are signature bytes: as good as random for every stored entry, since only
// verified tokens are stored. Hashing the whole token here would double the
// cost of a hit, as the map hashes it again. A crafted lookup string can
// only choose which shard it misses in.
func (c *cache) shard(key string) *cacheShard {
	n := len(key)
	if len(c.shards) == 1 || n < 3 {
		return &c.shards[0]
	}
	h := uint(key[n-2])*31 + uint(key[n-3])
	return &c.shards[h%uint(len(c.shards))]
}

func (c *cache) get(key string) (cacheEntry, bool) {
	s := c.shard(key)
	s.mu.RLock()
	e, ok := s.entries[key]
	s.mu.RUnlock()
	return e, ok
}

func (c *cache) put(key string, e cacheEntry, now time.Time) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[key]; !ok && len(s.entries) >= s.max {
		s.evict(now, e.version)
	}
	s.entries[key] = e
}

// evict frees at least one slot, preferring entries that can never hit
// again: expired ones, and ones cached under another version of the keys,
// which a hit would only re-verify. Map iteration starts at a random place,
// which is what makes the fallback random.
func (s *cacheShard) evict(now time.Time, version uint64) {
	var victim string
	seen := 0
	for k, e := range s.entries {
		if e.version != version || e.check(now) == ErrExpired {
			delete(s.entries, k)
		} else if victim == "" {
			victim = k
		}
		seen++
		if seen >= evictScan {
			break
		}
	}
	if len(s.entries) >= s.max && victim != "" {
		delete(s.entries, victim)
	}
}

func (c *cache) remove(key string) {
	s := c.shard(key)
	s.mu.Lock()
	delete(s.entries, key)
	s.mu.Unlock()
}

func (c *cache) clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.entries)
		s.mu.Unlock()
	}
}

func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}
