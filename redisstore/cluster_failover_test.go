package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepupauth/stepup/internal/redistest"
	"github.com/stepupauth/stepup/redisstore"
)

// After a master of a Redis Cluster (three masters, each with a replica)
// is killed, every Store, each on a Cluster client of its own as on three
// app replicas, serves the dead master's slots again within 5 s of the
// cluster promoting the replica, and the slot map reloads stay rate-limited.
func TestClusterFailoverRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster with replicas and waits for a failover")
	}
	const nodeTimeout = time.Second
	oc := redistest.StartCluster(t, 3, nodeTimeout)
	ctx := context.Background()
	prefix := redistest.Prefix(t)

	const replicas = 3
	stores := make([]*redisstore.Store, replicas)
	var probe *redis.ClusterClient
	for i := range stores {
		c := oc.Client(nil)
		if i == 0 {
			probe = c
		}
		s, err := redisstore.New(c, redisstore.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	// Warm every client: its slot map is loaded and it has used every master.
	for i, s := range stores {
		for k := range 32 {
			if err := s.Set(ctx, fmt.Sprint("warm-", k), []byte("v"), time.Minute); err != nil {
				t.Fatalf("store %d: warm-up Set: %v", i, err)
			}
		}
	}
	// The victim is the master of "sess:{victim}"; the test's keys all hash
	// to its slot.
	key := "sess:{victim}"
	slot := int(probe.ClusterKeySlot(ctx, stores[0].Key(key)).Val())
	victim, err := oc.MasterOf(ctx, slot, "")
	if err != nil {
		t.Fatal(err)
	}
	before := clusterSlotsCalls(t, oc, "")

	type result struct {
		recovered time.Time // start of the final run of successes
		streak    int       // successes since recovered
		lastErr   error
		failures  int
	}
	var mu sync.Mutex // guards results
	results := make([]result, replicas)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond): // the pace of an app's requests
				}
				started := time.Now()
				cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				v := []byte(strconv.Itoa(n))
				key := fmt.Sprintf("sess:{victim}:%d", i)
				err := s.Set(cctx, key, v, time.Minute)
				if err == nil {
					var got []byte
					got, err = s.Get(cctx, key)
					if err == nil && string(got) != string(v) {
						err = fmt.Errorf("Get = %q, want %q", got, v)
					}
				}
				cancel()
				mu.Lock()
				if err != nil {
					r.recovered, r.streak = time.Time{}, 0
					r.lastErr = err
					r.failures++
				} else {
					if r.recovered.IsZero() {
						r.recovered = started
					}
					r.streak++
				}
				mu.Unlock()
			}
		}()
	}

	time.Sleep(200 * time.Millisecond) // a few requests served before the kill
	oc.Node(victim).Kill()
	killed := time.Now()
	var failedOver time.Time
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		m, err := oc.MasterOf(cctx, slot, victim)
		cancel()
		if err == nil && m != victim {
			failedOver = time.Now()
			t.Logf("the cluster promoted %s for slot %d %v after %s was killed", m, slot, failedOver.Sub(killed).Round(time.Millisecond), victim)
			break
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("the cluster did not fail over within 30s: master of slot %d is %s (%v)", slot, m, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the cluster's own failover
	}
	// Wait until every store has recovered and served 25 requests in a row
	// (half a second of traffic), or 6 s have passed.
	for time.Since(failedOver) < 6*time.Second {
		mu.Lock()
		done := true
		for _, r := range results {
			done = done && r.streak >= 25
		}
		mu.Unlock()
		if done {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the stores' progress
	}
	close(stop)
	wg.Wait()
	window := time.Since(killed)

	for i, r := range results {
		if r.failures == 0 {
			t.Errorf("store %d never failed: the test did not hit the dead master", i)
			continue
		}
		if r.recovered.IsZero() {
			t.Errorf("store %d did not serve again within %v of the failover: %v", i, time.Since(failedOver).Round(time.Millisecond), r.lastErr)
			continue
		}
		ttr := r.recovered.Sub(failedOver)
		t.Logf("store %d: %d failed requests; served again %v after the cluster's failover (%v after the kill)",
			i, r.failures, ttr.Round(time.Millisecond), r.recovered.Sub(killed).Round(time.Millisecond))
		if ttr > 5*time.Second {
			t.Errorf("store %d served again %v after the cluster's failover, want at most 5s", i, ttr)
		}
	}
	// Reloads are rate-limited: at most one per DefaultClusterReloadInterval
	// per Store, plus go-redis's own (a follow-up when asked during a
	// reload, and one when its map is older than its refresh interval),
	// whatever the rate of failures.
	reloads := clusterSlotsCalls(t, oc, victim) - before
	perStore := int(window/redisstore.DefaultClusterReloadInterval) + 1
	if limit := replicas * (perStore + 2); reloads > limit {
		t.Errorf("%d slot map loads in %v by %d stores, want at most %d", reloads, window.Round(time.Millisecond), replicas, limit)
	}
	t.Logf("%d slot map loads in %v by %d stores", reloads, window.Round(time.Millisecond), replicas)
}

// clusterSlotsCalls sums the CLUSTER SLOTS and CLUSTER SHARDS commands the
// nodes (but except) have served.
func clusterSlotsCalls(t *testing.T, oc *redistest.OwnCluster, except string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	total := 0
	for _, s := range oc.Nodes {
		if s.Addr() == except {
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		info, err := c.Info(ctx, "commandstats").Result()
		c.Close()
		if err != nil {
			continue // a killed node
		}
		for _, line := range strings.Split(info, "\n") {
			for _, cmd := range []string{"cmdstat_cluster|slots:calls=", "cmdstat_cluster|shards:calls="} {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(line), cmd); ok {
					n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
					total += n
				}
			}
		}
	}
	return total
}
