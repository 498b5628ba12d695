// Package redis implements latchkey.Limiter on Redis, so that several auth
// server replicas count login attempts together: ten wrong passwords spread
// over three replicas are ten, not thirty.
//
// # Algorithm
//
// It is the generic cell rate algorithm (GCRA) of latchkey.MemoryLimiter,
// as redis-cell and go-redis/redis_rate use it: one number per key, the
// theoretical arrival time (TAT) of the next attempt, in microseconds. An
// attempt is allowed when TAT - now ≤ Every × (Burst-1), and then moves TAT
// one Every later; a refund moves it one Every back. Every Take and Refund
// is one Lua script, run with EVALSHA (EVAL once after the server has
// forgotten it), so that the read and the write of a key happen in one
// step on the server: concurrent takes from any number of replicas can
// never both spend the last attempt. A key is stored with a TTL that ends
// when its allowance is full again, when forgetting it changes nothing, so
// Redis holds nothing for a key once its window has passed.
//
// # Time
//
// By default the script reads the time from Redis (TIME): all replicas
// then share one clock, and a replica whose clock runs ahead cannot refill
// everybody's allowance early (nor one that lags stretch it), whatever NTP
// does on each host. Config.Now passes the caller's clock instead. That is
// for tests: storetest.RunLimiter moves a clock by hand over rates of an
// hour, which a server clock cannot follow. Both paths are the same script;
// only where now comes from differs, and this package's own tests check
// the server-time path with short real rates. A script that reads TIME
// and then writes needs effects replication: the default since Redis 5,
// the only mode since Redis 7.
//
// # Keys
//
// A key is stored as Prefix followed by the hex of the first 16 bytes of
// its SHA-256. Login keys carry usernames and client addresses, and Redis
// shows its keys and arguments to anyone who runs MONITOR, SLOWLOG or
// SCAN, or copies a dump; the hash keeps them out of sight and bounds a
// key's length. It is no secret: whoever can read Redis can still confirm a
// guessed username.
//
// # When Redis goes away
//
// Login must keep working without Redis, so a Limiter owns a
// latchkey.MemoryLimiter and falls back to it when a call to Redis fails
// or takes longer than Config.Timeout. The first failure logs one warning
// and from then on calls go straight to the fallback, with no network cost,
// while one background probe every Config.RetryInterval asks Redis whether
// it is back; the first probe that succeeds logs one info line and Redis is
// used again. During an outage each replica counts on its own, so the
// effective limit is multiplied by the number of replicas until Redis
// returns; the fallback starts from no history, so each user and address
// has its full burst on each replica.
//
// go-redis also logs each failed dial, through its own process-wide logger
// (goredis.SetLogger), so during an outage it prints a line per probe. This
// package leaves that setting to the binary, which owns process-wide
// choices.
package redis
