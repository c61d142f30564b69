// Package redisstore is the Redis [store.Store]: the shared store that lets
// stepup run as many replicas without sticky sessions, and background workers
// beside them. The issue and design call it store_redis; Go package names
// carry no underscore.
//
// It works over any go-redis v9 client (redis.UniversalClient): a plain
// client, a Sentinel failover client, a Cluster client. The caller creates,
// configures and closes the client; the client must have
// ContextTimeoutEnabled set, so that every call ends at its context's
// deadline even when Redis hangs (New refuses a client without it):
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
//	defer rdb.Close()
//	st, err := redisstore.New(rdb, redisstore.Options{Prefix: "myapp:stepup:"})
//
// or, from a deployment's REDIS_URL (one server, Cluster or Sentinel, see
// [OpenURL]):
//
//	rdb, err := redisstore.OpenURL(os.Getenv("REDIS_URL"))
//
// Tests prove it on a real redis-server, a real three-master Redis Cluster
// and a real Sentinel set-up through a failover (scripts/test.sh starts
// them).
//
// Each Store operation is one command, one round trip, atomic on the
// server:
//
//	Get           GET
//	GetEx         GETEX key PX ttl
//	Set           SET key value PX ttl
//	SetNX         SET key value NX PX ttl
//	Take          GETDEL (Redis 6.2 or later)
//	Delete        DEL (a record or an index)
//	IndexAdd      EVALSHA of a script: ZREMRANGEBYSCORE of the expired members,
//	              ZADD member (score: its expiry), PEXPIREAT of the key to its
//	              latest member's expiry
//	IndexMembers  EVALSHA of a script: ZRANGEBYSCORE from now
//	IndexRemove   ZREM (Redis deletes a sorted set left empty)
//
// An index is a sorted set whose scores are its members' expiry times in
// milliseconds by the server's clock (TIME, read inside the script), so that
// members expire one by one and the key itself goes with its last member;
// the scripts check their arguments (one key, a non-empty member, a whole
// positive TTL in milliseconds) and refuse anything else with an error.
// The first call of a script on a server that does not have it (a new,
// restarted or failed-over server) costs one more command: EVALSHA answers
// NOSCRIPT and go-redis's Script.Run sends EVAL. Expiry is Redis's own: the
// TTL is set on the server, so an expired record is gone from Redis, not
// merely hidden by this package.
//
// # Keys and Redis Cluster
//
// A record's Redis key is Options.Prefix followed by the stepup key. Every
// operation touches one key, so a Cluster never has to keep two keys
// together for this package; a caller that wants keys on one node (say, for
// its own MULTI or Lua script) gives them the same hash tag, as in
// "sess:{abc}" and "lease:{abc}": Redis hashes only the part between the
// first '{' and the next '}'. The prefix may not contain braces, so it never
// captures or breaks a caller's tag (and never puts every key in one slot).
//
// # Redis Cluster failover
//
// go-redis's Cluster client learns where slots moved from MOVED and
// READONLY replies, and otherwise reloads its slot map only when the map is
// older than its refresh interval. When a master dies, nobody answers MOVED:
// calls for its slots keep going to the dead address (connection refused,
// or a timeout) until that reload. So a Store over a *redis.ClusterClient
// asks the client to reload its slot map (ClusterClient.ReloadState) when a
// call fails in a way that may mean the masters changed (a connection
// refused, reset or timed out; CLUSTERDOWN, TRYAGAIN, MASTERDOWN, LOADING),
// at most once per Options.ClusterReloadInterval (default one second) per
// Store, so that a flapping node cannot cause a storm of reloads. A test
// kills a master of a three-master Cluster with replicas: every Store serves
// its slots again within a few hundred milliseconds of the cluster promoting
// the replica (asserted: within 5 s). Records written to the dead master and
// not yet replicated are lost, as Redis Cluster documents.
//
// # Errors
//
// A missing key is [store.ErrNotFound]. Every failure of Redis or of the
// connection (refused, reset, timeout, a server error such as OOM, READONLY,
// CLUSTERDOWN or WRONGTYPE) is an *Error that matches [store.ErrUnavailable]
// and wraps the go-redis error; when the call's context ended, it also
// matches ctx.Err(). Callers fail closed on it. Recovery needs nothing from
// the caller: go-redis reconnects, a Sentinel client follows the new master,
// a Cluster Store reloads the slot map (above), and the next call after
// Redis is back works.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepupauth/stepup/store"
)

// DefaultPrefix is the key prefix used when Options.Prefix is empty.
const DefaultPrefix = "stepup:"

// Options configures a Store. The zero value is usable.
type Options struct {
	// Prefix is prepended to every key, to share a Redis with other data or
	// other applications. Default: DefaultPrefix ("stepup:"). It may not
	// contain '{' or '}' (see "Keys and Redis Cluster").
	Prefix string

	// ClusterReloadInterval applies to a *redis.ClusterClient only: when a
	// call fails for a reason that may mean the cluster changed (a
	// connection refused, reset or timed out, CLUSTERDOWN, TRYAGAIN,
	// MASTERDOWN, LOADING), the Store asks the client to reload its slot map
	// (ClusterClient.ReloadState), at most once per ClusterReloadInterval,
	// so that a node that flaps cannot cause a storm of reloads. Default:
	// DefaultClusterReloadInterval. A negative value turns it off (go-redis
	// then reloads only on MOVED or READONLY replies and when its slot map
	// is older than its own refresh interval). See "Redis Cluster
	// failover".
	ClusterReloadInterval time.Duration
}

// DefaultClusterReloadInterval is the default Options.ClusterReloadInterval:
// after a failover, a Store reloads the new slot map within about this long
// of the cluster promoting a replica, and never more often.
const DefaultClusterReloadInterval = time.Second

// Store is a store.Store over a go-redis client. It is safe for concurrent
// use and holds no state but its configuration: many Stores, in many
// processes, may share one Redis.
type Store struct {
	c      redis.UniversalClient
	prefix string
	// reload is nil unless c is a *redis.ClusterClient and reloads are on.
	reload *reloader
}

// reloader asks a Cluster client to reload its slot map, at most once per
// interval.
type reloader struct {
	interval time.Duration
	now      func() time.Time
	reload   func()
	// next is when the next reload may start (unix ns).
	next atomic.Int64
}

// trigger reloads unless a reload started less than interval ago; of
// concurrent callers, one reloads.
func (r *reloader) trigger() {
	now := r.now().UnixNano()
	n := r.next.Load()
	if now < n || !r.next.CompareAndSwap(n, now+int64(r.interval)) {
		return
	}
	r.reload()
}

// mayMeanTopologyChange reports whether a failed call's error may come from
// a node that went away or a cluster that is changing masters: any error
// but a server reply (a connection refused or reset, a timeout, a pool
// error), and the server replies that say so.
func mayMeanTopologyChange(err error) bool {
	if err == nil || err == redis.Nil || errors.Is(err, context.Canceled) {
		return false
	}
	var re redis.Error
	if !errors.As(err, &re) {
		return true
	}
	msg := re.Error()
	for _, p := range []string{"CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "LOADING"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// Error is a failure of Redis or of the connection to it. It matches
// store.ErrUnavailable, the go-redis error, and, if the call's context had
// ended, the context's error.
type Error struct {
	// Op names the operation: the Redis command ("SET", "SET NX", "GET",
	// "GETEX", "GETDEL", "DEL", "ZREM") or the script ("INDEX ADD",
	// "INDEX MEMBERS").
	Op  string
	Err error // the go-redis error
	// Ctx is the context's error when the context had ended by the time the
	// call failed, else nil.
	Ctx error
}

func (e *Error) Error() string {
	msg := "stepup: redisstore: " + e.Op + " failed, store unavailable: " + e.Err.Error()
	if e.Ctx != nil && !errors.Is(e.Err, e.Ctx) {
		msg += " (" + e.Ctx.Error() + ")"
	}
	return msg
}

// Unwrap lets errors.Is and errors.As see store.ErrUnavailable, the go-redis
// error and the context's error.
func (e *Error) Unwrap() []error {
	if e.Ctx != nil {
		return []error{store.ErrUnavailable, e.Err, e.Ctx}
	}
	return []error{store.ErrUnavailable, e.Err}
}

// ErrInvalidConfig is matched by the errors of New.
var ErrInvalidConfig = errors.New("stepup: redisstore: invalid configuration")

// New returns a Store that keeps its records in Redis through client, which
// the caller owns (and closes, after the Store's last use). It fails when
// client is nil, when opts.Prefix contains a brace, or when client is a
// *redis.Client, *redis.ClusterClient or *redis.Ring whose options leave
// ContextTimeoutEnabled false (calls would then ignore their context's
// deadline). New sends nothing to Redis: a Redis that is down at start-up
// is reported by the first call, as ErrUnavailable.
//
// When client is a *redis.ClusterClient, the Store reloads the client's slot
// map after failures that may mean a failover, rate-limited by
// opts.ClusterReloadInterval (see "Redis Cluster failover"); this is what
// makes a Cluster client from OpenURL, or of the caller's own, recover
// within about a second of the cluster's failover instead of at go-redis's
// next periodic refresh.
func New(client redis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil redis client", ErrInvalidConfig)
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("%w: Prefix %q contains a brace; Redis Cluster would hash every key by it", ErrInvalidConfig, opts.Prefix)
	}
	if !contextTimeoutEnabled(client) {
		return nil, fmt.Errorf("%w: the redis client's options have ContextTimeoutEnabled false, so calls would "+
			"hang past their context's deadline when Redis stalls; set ContextTimeoutEnabled: true", ErrInvalidConfig)
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	s := &Store{c: client, prefix: prefix}
	if cc, ok := client.(*redis.ClusterClient); ok && opts.ClusterReloadInterval >= 0 {
		interval := opts.ClusterReloadInterval
		if interval == 0 {
			interval = DefaultClusterReloadInterval
		}
		s.reload = &reloader{interval: interval, now: time.Now,
			reload: func() { cc.ReloadState(context.Background()) }}
	}
	return s, nil
}

func contextTimeoutEnabled(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true // a client of the caller's own: its contract is its own
}

// Key returns the Redis key of the record with the stepup key key: the
// prefix followed by key.
func (s *Store) Key(key string) string { return s.prefix + key }

var (
	errEmptyKey = fmt.Errorf("stepup: redisstore: %w: empty key", store.ErrInvalidArgument)
	errBadTTL   = fmt.Errorf("stepup: redisstore: %w: TTL must be greater than 0", store.ErrInvalidArgument)

	errEmptyMember = fmt.Errorf("stepup: redisstore: %w: empty index member", store.ErrInvalidArgument)
)

func begin(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stepup: redisstore: %w", err)
	}
	if key == "" {
		return errEmptyKey
	}
	return nil
}

// beginWrite is begin for a write: it also checks ttl and rounds it up to
// Redis's resolution, a millisecond.
func beginWrite(ctx context.Context, key string, ttl time.Duration) (time.Duration, error) {
	if err := begin(ctx, key); err != nil {
		return 0, err
	}
	if ttl <= 0 {
		return 0, errBadTTL
	}
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	return ttl, nil
}

// fail wraps a failed call's error, and on a Cluster asks for a slot map
// reload when the error may mean the masters changed.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if s.reload != nil && mayMeanTopologyChange(err) {
		s.reload.trigger()
	}
	return &Error{Op: op, Err: err, Ctx: ctx.Err()}
}

// value returns the record in the reply of op (GET, GETDEL, GETEX), or
// store.ErrNotFound when there is none.
func (s *Store) value(ctx context.Context, op string, cmd *redis.StringCmd) ([]byte, error) {
	v, err := cmd.Bytes()
	if err == redis.Nil {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return v, nil
}

// Get implements store.Store with GET.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := begin(ctx, key); err != nil {
		return nil, err
	}
	return s.value(ctx, "GET", s.c.Get(ctx, s.Key(key)))
}

// Set implements store.Store with SET PX.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ttl, err := beginWrite(ctx, key, ttl)
	if err != nil {
		return err
	}
	if err := s.c.Set(ctx, s.Key(key), value, ttl).Err(); err != nil {
		return s.fail(ctx, "SET", err)
	}
	return nil
}

// SetNX implements store.Store with SET NX PX.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ttl, err := beginWrite(ctx, key, ttl)
	if err != nil {
		return false, err
	}
	ok, err := s.c.SetNX(ctx, s.Key(key), value, ttl).Result()
	if err != nil {
		return false, s.fail(ctx, "SET NX", err)
	}
	return ok, nil
}

// Take implements store.Store with GETDEL, atomic on the server.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	if err := begin(ctx, key); err != nil {
		return nil, err
	}
	return s.value(ctx, "GETDEL", s.c.GetDel(ctx, s.Key(key)))
}

// Delete implements store.Store with DEL.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := begin(ctx, key); err != nil {
		return err
	}
	if err := s.c.Del(ctx, s.Key(key)).Err(); err != nil {
		return s.fail(ctx, "DEL", err)
	}
	return nil
}

// GetEx implements store.Store with GETEX PX.
func (s *Store) GetEx(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	ttl, err := beginWrite(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return s.value(ctx, "GETEX", s.c.GetEx(ctx, s.Key(key), ttl))
}

// An index is a sorted set whose scores are the members' expiry times in
// unix milliseconds by the server's clock (TIME), so that members expire one
// by one; the key itself expires with its last member. Each operation is one
// script on one key: atomic, and safe on a Cluster.
var (
	indexAddScript = redis.NewScript(`
local member, ttl = ARGV[1], tonumber(ARGV[2])
if #KEYS ~= 1 or #ARGV ~= 2 or member == nil or member == '' then
  return redis.error_reply('ERR stepup index: want one key, a non-empty member and a TTL')
end
if ttl == nil or ttl < 1 or ttl > 1e13 or ttl ~= math.floor(ttl) then
  return redis.error_reply('ERR stepup index: TTL must be a whole number of milliseconds, 1 or more')
end
local t = redis.call('TIME')
local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- Expired: score <= now (floor). Added: ceil(now) + ttl, so that the
-- member is live for at least ttl.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', math.floor(us / 1000))
redis.call('ZADD', KEYS[1], math.ceil(us / 1000) + ttl, member)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
`)
	indexMembersScript = redis.NewScript(`
if #KEYS ~= 1 or #ARGV ~= 0 then
  return redis.error_reply('ERR stepup index: want one key')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
`)
)

// IndexAdd implements store.Store with one script (ZREMRANGEBYSCORE of the
// expired members, ZADD, PEXPIREAT of the key to its last member's expiry).
func (s *Store) IndexAdd(ctx context.Context, key, member string, ttl time.Duration) error {
	ttl, err := beginWrite(ctx, key, ttl)
	if err != nil {
		return err
	}
	if member == "" {
		return errEmptyMember
	}
	if err := indexAddScript.Run(ctx, s.c, []string{s.Key(key)}, member, ttl.Milliseconds()).Err(); err != nil {
		return s.fail(ctx, "INDEX ADD", err)
	}
	return nil
}

// IndexMembers implements store.Store with one script (ZRANGEBYSCORE from
// the server's time).
func (s *Store) IndexMembers(ctx context.Context, key string) ([]string, error) {
	if err := begin(ctx, key); err != nil {
		return nil, err
	}
	v, err := indexMembersScript.Run(ctx, s.c, []string{s.Key(key)}).StringSlice()
	if err != nil && err != redis.Nil {
		return nil, s.fail(ctx, "INDEX MEMBERS", err)
	}
	return v, nil
}

// IndexRemove implements store.Store with ZREM.
func (s *Store) IndexRemove(ctx context.Context, key, member string) error {
	if err := begin(ctx, key); err != nil {
		return err
	}
	if member == "" {
		return errEmptyMember
	}
	if err := s.c.ZRem(ctx, s.Key(key), member).Err(); err != nil {
		return s.fail(ctx, "ZREM", err)
	}
	return nil
}

var _ store.Store = (*Store)(nil)
