package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A flapping node cannot cause a reload storm: of any number of failures,
// concurrent or not, at most one per interval reloads.
func TestReloaderRateLimit(t *testing.T) {
	var (
		mu      sync.Mutex
		now     = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		reloads atomic.Int32
	)
	r := &reloader{interval: time.Second, reload: func() { reloads.Add(1) },
		now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				r.trigger()
			}
		}()
	}
	wg.Wait()
	if n := reloads.Load(); n != 1 {
		t.Fatalf("6,400 failures at one instant: %d reloads, want 1", n)
	}
	advance(999 * time.Millisecond)
	r.trigger()
	if n := reloads.Load(); n != 1 {
		t.Fatalf("a failure 999ms later: %d reloads, want still 1", n)
	}
	advance(time.Millisecond)
	r.trigger()
	r.trigger()
	if n := reloads.Load(); n != 2 {
		t.Fatalf("failures 1s after the first reload: %d reloads, want 2", n)
	}
	// 10 s of failures every 10 ms: 10 more reloads.
	for range 1000 {
		advance(10 * time.Millisecond)
		r.trigger()
	}
	if n := reloads.Load(); n != 12 {
		t.Fatalf("10s of failures: %d reloads in all, want 12", n)
	}
}

func TestMayMeanTopologyChange(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{redis.Nil, false},
		{context.Canceled, false},
		{fmt.Errorf("wrapped: %w", context.Canceled), false},
		{refused, true},
		{io.EOF, true},
		{context.DeadlineExceeded, true},
		{redis.ErrPoolTimeout, true},
		{proto("CLUSTERDOWN The cluster is down"), true},
		{proto("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{proto("MASTERDOWN Link with MASTER is down"), true},
		{proto("LOADING Redis is loading the dataset in memory"), true},
		{proto("OOM command not allowed when used memory > 'maxmemory'"), false},
		{proto("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{proto("ERR stepup index: TTL must be a whole number of milliseconds, 1 or more"), false},
	} {
		if got := mayMeanTopologyChange(tc.err); got != tc.want {
			t.Errorf("mayMeanTopologyChange(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// proto returns a server error reply (a redis.Error, as go-redis's own
// proto.RedisError is).
func proto(msg string) error { return redisError(msg) }

type redisError string

func (e redisError) Error() string { return string(e) }
func (redisError) RedisError()     {}

// A Store over a Cluster client wires the reloader; one over a plain client
// does not; a negative interval turns it off.
func TestNewWiresReloader(t *testing.T) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true})
	defer cc.Close()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer c.Close()
	s, err := New(cc, Options{})
	if err != nil || s.reload == nil || s.reload.interval != DefaultClusterReloadInterval {
		t.Fatalf("New(cluster) = %+v, %v; want a reloader every %v", s, err, DefaultClusterReloadInterval)
	}
	if s, err := New(cc, Options{ClusterReloadInterval: -1}); err != nil || s.reload != nil {
		t.Fatalf("New(cluster, -1) = %+v, %v; want no reloader", s, err)
	}
	if s, err := New(c, Options{}); err != nil || s.reload != nil {
		t.Fatalf("New(plain) = %+v, %v; want no reloader", s, err)
	}
	// Failing calls trigger it, rate-limited.
	s, err = New(cc, Options{ClusterReloadInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	s.reload.reload = func() { n.Add(1) }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 5 {
		if _, err := s.Get(ctx, "k"); err == nil {
			t.Fatal("Get with no server succeeded")
		}
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("5 failed calls within an hour: %d reloads, want 1", got)
	}
}
