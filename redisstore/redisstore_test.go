package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/stepupauth/stepup/internal/redistest"
	"github.com/stepupauth/stepup/redisstore"
	"github.com/stepupauth/stepup/store"
	"github.com/stepupauth/stepup/store/storetest"
)

// newStore returns a Store over c under a prefix of its own inside t's key
// space (so that two stores of one test are isolated).
func newStore(t *testing.T, c redis.UniversalClient) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(c, redisstore.Options{Prefix: fmt.Sprintf("%ss%d:", redistest.Prefix(t), seq.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var seq atomic.Int64

func TestConformance(t *testing.T) {
	redistest.Client(t) // skips (or fails) the whole suite without a server
	storetest.Run(t, func(t *testing.T) store.Store {
		return newStore(t, redistest.Client(t))
	})
}

func TestConformanceCluster(t *testing.T) {
	redistest.Cluster(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return newStore(t, redistest.Cluster(t))
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	ok := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer ok.Close()
	noCtx := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer noCtx.Close()
	noCtxCluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer noCtxCluster.Close()
	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   redisstore.Options
	}{
		{"nil client", nil, redisstore.Options{}},
		{"prefix with an opening brace", ok, redisstore.Options{Prefix: "app{"}},
		{"prefix with a hash tag", ok, redisstore.Options{Prefix: "{app}:"}},
		{"client without ContextTimeoutEnabled", noCtx, redisstore.Options{}},
		{"cluster client without ContextTimeoutEnabled", noCtxCluster, redisstore.Options{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redisstore.New(tc.client, tc.opts)
			if !errors.Is(err, redisstore.ErrInvalidConfig) || s != nil {
				t.Fatalf("New = %v, %v; want nil, ErrInvalidConfig", s, err)
			}
		})
	}
	// New does not talk to Redis: a server that is down is the first call's
	// error, not New's.
	s, err := redisstore.New(ok, redisstore.Options{})
	if err != nil {
		t.Fatalf("New with a valid config and no server: %v", err)
	}
	if got, want := s.Key("tx:abc"), "stepup:tx:abc"; got != want {
		t.Errorf("Key with the default prefix = %q, want %q", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get with no server: got %v, want ErrUnavailable", err)
	}
}

// Each operation is exactly one Redis command, the one the doc names:
// counted by a go-redis hook, on a plain client and on a Cluster client.
func TestOneCommandPerOperation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client func(t *testing.T) redis.UniversalClient
	}{
		{"single", func(t *testing.T) redis.UniversalClient { return redistest.Client(t) }},
		{"cluster", func(t *testing.T) redis.UniversalClient { return redistest.Cluster(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client(t)
			s := newStore(t, c)
			n := redistest.CountCommands(c)
			ctx := context.Background()
			ops := []struct {
				name string
				op   func() error
				want []string
			}{
				{"Set", func() error { return s.Set(ctx, "k", []byte("v"), time.Minute) }, []string{"set"}},
				{"SetNX", func() error { _, err := s.SetNX(ctx, "k2", []byte("v"), time.Minute); return err }, []string{"set"}},
				{"Get", func() error { _, err := s.Get(ctx, "k"); return err }, []string{"get"}},
				{"Take", func() error { _, err := s.Take(ctx, "k"); return err }, []string{"getdel"}},
				{"Take missing", func() error {
					_, err := s.Take(ctx, "k")
					if errors.Is(err, store.ErrNotFound) {
						return nil
					}
					return err
				}, []string{"getdel"}},
				{"Delete", func() error { return s.Delete(ctx, "k2") }, []string{"del"}},
				{"GetEx", func() error {
					if err := s.Set(ctx, "k3", []byte("v"), time.Minute); err != nil {
						return err
					}
					n.Reset()
					_, err := s.GetEx(ctx, "k3", time.Hour)
					return err
				}, []string{"getex"}},
				// The scripts were loaded by a first call (EVALSHA, then EVAL
				// on NOSCRIPT); from then on, one EVALSHA each.
				{"IndexAdd", func() error {
					if err := s.IndexAdd(ctx, "ix", "warm", time.Minute); err != nil {
						return err
					}
					n.Reset()
					return s.IndexAdd(ctx, "ix", "m", time.Minute)
				}, []string{"evalsha"}},
				{"IndexMembers", func() error {
					if _, err := s.IndexMembers(ctx, "ix"); err != nil {
						return err
					}
					n.Reset()
					_, err := s.IndexMembers(ctx, "ix")
					return err
				}, []string{"evalsha"}},
				{"IndexRemove", func() error { return s.IndexRemove(ctx, "ix", "m") }, []string{"zrem"}},
				{"Delete index", func() error { return s.Delete(ctx, "ix") }, []string{"del"}},
			}
			for _, op := range ops {
				n.Reset()
				if err := op.op(); err != nil {
					t.Fatalf("%s: %v", op.name, err)
				}
				if diff := cmp.Diff(op.want, n.Commands()); diff != "" {
					t.Errorf("%s sent other commands than expected (-want +got):\n%s", op.name, diff)
				}
			}
		})
	}
}

// The scripts survive SCRIPT FLUSH (a restarted or failed-over server has
// no scripts): EVALSHA answers NOSCRIPT and go-redis's Script.Run sends EVAL,
// one extra command, once; the result is right.
func TestIndexScriptsAfterScriptFlush(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client func(t *testing.T) redis.UniversalClient
	}{
		{"single", func(t *testing.T) redis.UniversalClient { return redistest.Client(t) }},
		{"cluster", func(t *testing.T) redis.UniversalClient { return redistest.Cluster(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client(t)
			s := newStore(t, c)
			ctx := context.Background()
			if err := s.IndexAdd(ctx, "ix", "a", time.Minute); err != nil {
				t.Fatal(err)
			}
			flush := func() {
				t.Helper()
				var err error
				if cc, ok := c.(*redis.ClusterClient); ok {
					err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.ScriptFlush(ctx).Err() })
				} else {
					err = c.ScriptFlush(ctx).Err()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			flush()
			n := redistest.CountCommands(c)
			if err := s.IndexAdd(ctx, "ix", "b", time.Minute); err != nil {
				t.Fatalf("IndexAdd after SCRIPT FLUSH: %v", err)
			}
			if diff := cmp.Diff([]string{"evalsha", "eval"}, n.Commands()); diff != "" {
				t.Errorf("IndexAdd after SCRIPT FLUSH (-want +got):\n%s", diff)
			}
			flush()
			n.Reset()
			got, err := s.IndexMembers(ctx, "ix")
			slices.Sort(got)
			if err != nil || !slices.Equal(got, []string{"a", "b"}) {
				t.Fatalf("IndexMembers after SCRIPT FLUSH = %q, %v; want [a b]", got, err)
			}
			if diff := cmp.Diff([]string{"evalsha", "eval"}, n.Commands()); diff != "" {
				t.Errorf("IndexMembers after SCRIPT FLUSH (-want +got):\n%s", diff)
			}
		})
	}
}

// An index is a sorted set scored by expiry (ms, server time) whose key
// expires with its last member; removing the last member deletes the key.
func TestIndexInRedis(t *testing.T) {
	c := redistest.Client(t)
	s := newStore(t, c)
	ctx := context.Background()
	if err := s.IndexAdd(ctx, "ix", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.IndexAdd(ctx, "ix", "b", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	pttl, err := c.PTTL(ctx, s.Key("ix")).Result()
	if err != nil || pttl <= 2*time.Minute-10*time.Second || pttl > 2*time.Minute+2*time.Millisecond {
		t.Fatalf("PTTL of the index = %v, %v; want close to 2m (its last member; rounded up by at most 1ms)", pttl, err)
	}
	// Shortening the last member shortens the key.
	if err := s.IndexAdd(ctx, "ix", "b", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if pttl, err := c.PTTL(ctx, s.Key("ix")).Result(); err != nil || pttl > time.Minute+2*time.Millisecond || pttl <= time.Minute-10*time.Second {
		t.Fatalf("PTTL after shortening b = %v, %v; want close to 1m (a is now the last)", pttl, err)
	}
	for _, m := range []string{"a", "b"} {
		if err := s.IndexRemove(ctx, "ix", m); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.Exists(ctx, s.Key("ix")).Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS of an emptied index = %d, %v; want 0", n, err)
	}
	// The scripts refuse bad arguments themselves (a caller that bypasses
	// the Go checks, or a script called by hand).
	for _, args := range [][]any{{"", 1000}, {"m", 0}, {"m", -5}, {"m", 1.5}, {"m", "x"}} {
		err := c.EvalSha(ctx, redisstore.IndexAddScriptSHA(), []string{s.Key("bad")}, args...).Err()
		if err == nil || !strings.Contains(err.Error(), "stepup index") {
			t.Errorf("index add script with %v: %v, want a stepup index error", args, err)
		}
	}
	if n, err := c.Exists(ctx, s.Key("bad")).Result(); err != nil || n != 0 {
		t.Fatalf("a refused script call wrote the key: EXISTS = %d, %v", n, err)
	}
	// An index op on a record's key is an error (WRONGTYPE), not a panic.
	if err := s.Set(ctx, "rec", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.IndexAdd(ctx, "rec", "m", time.Minute); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("IndexAdd on a record's key: %v, want an error matching ErrUnavailable", err)
	}
}

// The TTL is the server's: PTTL shows it right after the write, and an
// expired record is gone from Redis itself.
func TestServerSideExpiry(t *testing.T) {
	c := redistest.Client(t)
	s := newStore(t, c)
	ctx := context.Background()

	const ttl = 90 * time.Second
	if err := s.Set(ctx, "set", []byte("v"), ttl); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetNX(ctx, "setnx", []byte("v"), ttl); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"set", "setnx"} {
		pttl, err := c.PTTL(ctx, s.Key(k)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if pttl <= ttl-10*time.Second || pttl > ttl {
			t.Errorf("PTTL of %s = %v, want close to %v", s.Key(k), pttl, ttl)
		}
	}

	// Sub-millisecond TTLs are rounded up, never to 0 (which Redis rejects).
	if err := s.Set(ctx, "tiny", []byte("v"), 1500*time.Microsecond); err != nil {
		t.Fatalf("Set with 1.5ms: %v", err)
	}

	const short = 100 * time.Millisecond
	start := time.Now()
	if err := s.Set(ctx, "short", []byte("v"), short); err != nil {
		t.Fatal(err)
	}
	for {
		// EXISTS asks Redis directly, bypassing the store.
		n, err := c.Exists(ctx, s.Key("short")).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			if since := time.Since(start); since < short {
				t.Fatalf("key gone after %v, before its TTL %v", since, short)
			}
			break
		}
		if time.Since(start) > short+5*time.Second {
			t.Fatalf("key %s still exists in Redis %v after a TTL of %v", s.Key("short"), time.Since(start), short)
		}
		time.Sleep(5 * time.Millisecond) // polling the server's expiry
	}
	// Nothing is left under the store's prefix but the live records.
	keys, err := c.Keys(ctx, s.Key("*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if diff := cmp.Diff([]string{s.Key("set"), s.Key("setnx")}, keys); diff != "" {
		t.Errorf("keys in Redis (-want +got):\n%s", diff)
	}
}

// Keys that share a hash tag land in one Cluster slot, whatever the prefix;
// the prefix takes no part in the hashing.
func TestHashTagsSurviveThePrefix(t *testing.T) {
	c := redistest.Cluster(t)
	s := newStore(t, c)
	ctx := context.Background()
	slot := func(key string) int64 {
		t.Helper()
		n, err := c.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	want := slot("abc")
	for _, k := range []string{"sess:{abc}", "lease:{abc}:refresh", "{abc}"} {
		if got := slot(s.Key(k)); got != want {
			t.Errorf("slot of %q = %d, want %d (the slot of its tag)", s.Key(k), got, want)
		}
	}
	// Untagged keys spread over the slots instead of sharing the prefix's.
	slots := map[int64]bool{}
	for i := range 20 {
		slots[slot(s.Key(fmt.Sprint("tx:", i)))] = true
	}
	if len(slots) < 10 {
		t.Errorf("20 untagged keys fell in %d slots; the prefix seems to act as a hash tag", len(slots))
	}
	// And the store works with tagged keys on the Cluster.
	if err := s.Set(ctx, "sess:{abc}", []byte("s"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Take(ctx, "sess:{abc}"); err != nil || string(v) != "s" {
		t.Fatalf("Take = %q, %v", v, err)
	}
}
