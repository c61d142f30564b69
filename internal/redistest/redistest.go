// Package redistest gives stepup's tests the Redis servers that
// scripts/test.sh starts ([Client], [Cluster]), a key space of their own on
// them ([Prefix]), a go-redis hook that counts commands ([CountCommands]),
// and Redis processes of a test's own: a redis-server that the test may stop,
// kill, freeze and restart ([StartServer], for fault tests), a Sentinel
// set-up that fails over ([StartSentinel]), and a Redis Cluster with a
// replica per master whose masters the test may kill ([StartCluster], for
// Cluster failover tests). Processes are always stopped by their PID.
//
// The servers are named by environment variables, which scripts/redis.sh
// prints:
//
//	STEPUP_TEST_REDIS_ADDR=127.0.0.1:PORT        a plain redis-server
//	STEPUP_TEST_REDIS_CLUSTER=h:p,h:p,h:p          seeds of a three-master Redis Cluster
//	STEPUP_TEST_REQUIRE=1                          missing servers fail the test instead of skipping it
//
// Without them, a test that asks for a server is skipped with a message that
// says how to run it: scripts/test.sh, or
//
//	eval "$(scripts/redis.sh start)" && go test -race ./...
//
// Tests share the servers (and other engineers may use them by hand): a test
// never flushes a whole database, it works under [Prefix] and its keys are
// deleted when it ends.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Environment variables read by this package.
const (
	EnvAddr    = "STEPUP_TEST_REDIS_ADDR"
	EnvCluster = "STEPUP_TEST_REDIS_CLUSTER"
	EnvRequire = "STEPUP_TEST_REQUIRE"
)

const howTo = `run scripts/test.sh, or: eval "$(scripts/redis.sh start)" && go test -race ./...`

// Required reports whether STEPUP_TEST_REQUIRE asks for missing test
// dependencies to fail tests rather than skip them.
func Required() bool {
	v := os.Getenv(EnvRequire)
	return v != "" && v != "0" && v != "false"
}

// Unavailable skips the test because what is missing, or fails it when
// STEPUP_TEST_REQUIRE=1 (so that CI never passes on a skipped test).
func Unavailable(t testing.TB, what string) {
	t.Helper()
	msg := fmt.Sprintf("redistest: %s (%s)", what, howTo)
	if Required() {
		t.Fatalf("%s; %s=1, so this is a failure", msg, EnvRequire)
	}
	t.Skip(msg)
}

var prefixes sync.Map // testing.TB -> string

// Prefix returns the key prefix that belongs to t: unique to this test run
// and this test, the same on every call for t, without Redis hash-tag braces
// or glob characters, and ending in ':'. Keys under it are deleted when t
// ends by every client this package gave t.
func Prefix(t testing.TB) string {
	if p, ok := prefixes.Load(t); ok {
		return p.(string)
	}
	var b [4]byte
	rand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '.'
	}, t.Name())
	if len(name) > 48 {
		name = name[:48]
	}
	p, loaded := prefixes.LoadOrStore(t, "stepuptest:"+name+":"+hex.EncodeToString(b[:])+":")
	if !loaded {
		t.Cleanup(func() { prefixes.Delete(t) })
	}
	return p.(string)
}

// Client returns a client (with ContextTimeoutEnabled, as redisstore
// requires) of the plain redis-server (STEPUP_TEST_REDIS_ADDR) for t, whose key space under Prefix(t) is empty; the keys are deleted and
// the client closed when t ends. Without a server it skips t (or fails it,
// see Unavailable).
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	addr := os.Getenv(EnvAddr)
	if addr == "" {
		Unavailable(t, EnvAddr+" is not set: this test needs a redis-server")
	}
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	setUp(t, c, EnvAddr+"="+addr)
	return c
}

// Cluster returns a client of the Redis Cluster (STEPUP_TEST_REDIS_CLUSTER)
// for t, with the same key-space rules as Client.
func Cluster(t testing.TB) *redis.ClusterClient {
	t.Helper()
	seeds := os.Getenv(EnvCluster)
	if seeds == "" {
		Unavailable(t, EnvCluster+" is not set: this test needs a Redis Cluster")
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(seeds, ","), ContextTimeoutEnabled: true})
	setUp(t, c, EnvCluster+"="+seeds)
	// The cluster must be usable, not only reachable: every slot served.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil || !strings.Contains(info, "cluster_state:ok") {
		Unavailable(t, fmt.Sprintf("Redis Cluster at %s is not ok: %v %q", seeds, err, firstLine(info)))
	}
	return c
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// setUp checks that c answers, empties t's key space, and registers the
// clean-up.
func setUp(t testing.TB, c redis.UniversalClient, where string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		Unavailable(t, fmt.Sprintf("no Redis answers at %s: %v", where, err))
	}
	prefix := Prefix(t)
	if err := DeletePrefix(ctx, c, prefix); err != nil {
		c.Close()
		t.Fatalf("redistest: emptying %s*: %v", prefix, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := DeletePrefix(ctx, c, prefix); err != nil {
			t.Errorf("redistest: deleting the test's keys %s*: %v", prefix, err)
		}
		c.Close()
	})
}

// DeletePrefix deletes every key that starts with prefix (which must not
// contain glob characters), on every master of a Cluster.
func DeletePrefix(ctx context.Context, c redis.UniversalClient, prefix string) error {
	if strings.ContainsAny(prefix, `*?[]\`) {
		return fmt.Errorf("redistest: prefix %q contains glob characters", prefix)
	}
	del := func(ctx context.Context, node redis.Cmdable) error {
		iter := node.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var batch []string
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			// One key per DEL: on a Cluster node, keys of a batch may
			// lie in different slots.
			pipe := node.Pipeline()
			for _, k := range batch {
				pipe.Del(ctx, k)
			}
			batch = batch[:0]
			_, err := pipe.Exec(ctx)
			return err
		}
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 1000 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	}
	return eachNode(ctx, c, del)
}

// Keys lists the keys that match pattern (a SCAN pattern), on every master
// of a Cluster.
func Keys(ctx context.Context, c redis.UniversalClient, pattern string) ([]string, error) {
	var (
		mu   sync.Mutex
		keys []string
	)
	err := eachNode(ctx, c, func(ctx context.Context, node redis.Cmdable) error {
		iter := node.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	})
	return keys, err
}

// eachNode calls fn with c or, for a Cluster, with each of its masters
// (concurrently).
func eachNode(ctx context.Context, c redis.UniversalClient, fn func(context.Context, redis.Cmdable) error) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return fn(ctx, node)
		})
	}
	return fn(ctx, c)
}
