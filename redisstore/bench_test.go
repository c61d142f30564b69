package redisstore_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepupauth/stepup/internal/redistest"
	"github.com/stepupauth/stepup/redisstore"
)

// BenchmarkRedis compares each Store operation with the bare go-redis
// command it sends, on the same client and in the same run, with 1 and with
// 64 goroutines. The target is a store/bare throughput ratio of 0.9 or more
// (ns/op of bare divided by ns/op of store). Run it against the local Redis:
//
//	eval "$(scripts/redis.sh start)"
//	go test -run='^$' -bench=. -benchmem ./redisstore/
//
// side is one way of doing an operation: prepare runs before the timer,
// with b.N, and returns the operation for iteration i (0 <= i < b.N).
type side struct {
	name    string
	prepare func(b *testing.B) func(i int) error
}

type benchOp struct {
	name        string
	store, bare side
}

func BenchmarkRedis(b *testing.B) {
	for _, op := range benchOps(b) {
		for _, g := range []int{1, 64} {
			for _, sd := range []side{op.store, op.bare} {
				b.Run(fmt.Sprintf("%s/g%d/%s", op.name, g, sd.name), func(b *testing.B) {
					do := sd.prepare(b)
					b.ReportAllocs()
					b.ResetTimer()
					runOps(b, g, do)
				})
			}
		}
	}
}

// BenchmarkRedisPaired measures the same pairs as BenchmarkRedis, but
// alternates the store's operation and the bare command within every
// iteration (in alternating order), timing each: on a loaded machine both
// then see the same load, and the ratios are meaningful even when the
// absolute figures are not. It reports the mean and the median (p50) latency
// of each side, and bare/store for both: the throughput ratio, whose target
// is 0.9 or more. The median resists the scheduling hiccups that dominate
// single-goroutine figures on a busy machine.
func BenchmarkRedisPaired(b *testing.B) {
	for _, op := range benchOps(b) {
		for _, g := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/g%d", op.name, g), func(b *testing.B) {
				doStore, doBare := op.store.prepare(b), op.bare.prepare(b)
				storeNs, bareNs := make([]int64, b.N), make([]int64, b.N)
				timed := func(do func(int) error, i int, into []int64) error {
					t0 := time.Now()
					err := do(i)
					into[i] = int64(time.Since(t0))
					return err
				}
				b.ResetTimer()
				runOps(b, g, func(i int) error {
					if i%2 == 1 {
						if err := timed(doBare, i, bareNs); err != nil {
							return err
						}
						return timed(doStore, i, storeNs)
					}
					if err := timed(doStore, i, storeNs); err != nil {
						return err
					}
					return timed(doBare, i, bareNs)
				})
				b.StopTimer()
				sm, bm := mean(storeNs), mean(bareNs)
				sp, bp := median(storeNs), median(bareNs)
				b.ReportMetric(sm, "store-ns/op")
				b.ReportMetric(bm, "bare-ns/op")
				b.ReportMetric(bm/sm, "bare/store")
				b.ReportMetric(sp, "store-p50-ns")
				b.ReportMetric(bp, "bare-p50-ns")
				b.ReportMetric(bp/sp, "bare/store-p50")
			})
		}
	}
}

func mean(xs []int64) float64 {
	var sum float64
	for _, x := range xs {
		sum += float64(x)
	}
	return sum / float64(len(xs))
}

func median(xs []int64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return float64(s[len(s)/2])
}

// runOps calls do for i in [0, b.N), from one goroutine or from g.
func runOps(b *testing.B, g int, do func(i int) error) {
	if g == 1 {
		for i := range b.N {
			if err := do(i); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	// RunParallel starts parallelism*GOMAXPROCS goroutines.
	b.SetParallelism((g + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := do(int(next.Add(1) - 1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchOps connects to the test Redis and returns the operations to compare.
func benchOps(b *testing.B) []benchOp {
	c := redistest.Client(b)
	prefix := redistest.Prefix(b)
	s, err := redisstore.New(c, redisstore.Options{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	value := make([]byte, 256) // about the size of an authorization transaction
	for i := range value {
		value[i] = byte(i)
	}
	const ttl = 5 * time.Minute

	// Fixed keys for Set and Get, built before timing for both sides.
	const nfixed = 1024
	fixed := make([]string, nfixed)
	for i := range fixed {
		fixed[i] = "fixed:" + strconv.Itoa(i)
		if err := c.Set(ctx, prefix+fixed[i], value, ttl).Err(); err != nil {
			b.Fatal(err)
		}
	}
	full := func(keys []string) []string {
		out := make([]string, len(keys))
		for i, k := range keys {
			out[i] = prefix + k
		}
		return out
	}
	fixedFull := full(fixed)

	var run atomic.Int64
	// fresh returns n keys never used before, and the same with the prefix.
	fresh := func(n int) ([]string, []string) {
		r := run.Add(1)
		keys := make([]string, n)
		for i := range keys {
			keys[i] = "k" + strconv.FormatInt(r, 10) + ":" + strconv.Itoa(i)
		}
		return keys, full(keys)
	}
	// fill writes the keys (with the prefix) in pipelines.
	fill := func(b *testing.B, keys []string) {
		for i := 0; i < len(keys); i += 1000 {
			pipe := c.Pipeline()
			for _, k := range keys[i:min(i+1000, len(keys))] {
				pipe.Set(ctx, k, value, ttl)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}

	return []benchOp{
		{"Set",
			side{"store", func(b *testing.B) func(int) error {
				return func(i int) error { return s.Set(ctx, fixed[i%nfixed], value, ttl) }
			}},
			side{"bare", func(b *testing.B) func(int) error {
				return func(i int) error { return c.Set(ctx, fixedFull[i%nfixed], value, ttl).Err() }
			}}},
		{"SetNX",
			side{"store", func(b *testing.B) func(int) error {
				keys, _ := fresh(b.N)
				return func(i int) error { _, err := s.SetNX(ctx, keys[i], value, ttl); return err }
			}},
			side{"bare", func(b *testing.B) func(int) error {
				_, keys := fresh(b.N)
				return func(i int) error { return c.SetNX(ctx, keys[i], value, ttl).Err() }
			}}},
		{"Get",
			side{"store", func(b *testing.B) func(int) error {
				return func(i int) error { _, err := s.Get(ctx, fixed[i%nfixed]); return err }
			}},
			side{"bare", func(b *testing.B) func(int) error {
				return func(i int) error { return c.Get(ctx, fixedFull[i%nfixed]).Err() }
			}}},
		{"Take",
			side{"store", func(b *testing.B) func(int) error {
				keys, keysFull := fresh(b.N)
				fill(b, keysFull)
				return func(i int) error { _, err := s.Take(ctx, keys[i]); return err }
			}},
			side{"bare", func(b *testing.B) func(int) error {
				_, keys := fresh(b.N)
				fill(b, keys)
				return func(i int) error { return c.GetDel(ctx, keys[i]).Err() }
			}}},
		{"Delete",
			side{"store", func(b *testing.B) func(int) error {
				keys, keysFull := fresh(b.N)
				fill(b, keysFull)
				return func(i int) error { return s.Delete(ctx, keys[i]) }
			}},
			side{"bare", func(b *testing.B) func(int) error {
				_, keys := fresh(b.N)
				fill(b, keys)
				return func(i int) error { return c.Del(ctx, keys[i]).Err() }
			}}},
		{"GetEx",
			side{"store", func(b *testing.B) func(int) error {
				return func(i int) error { _, err := s.GetEx(ctx, fixed[i%nfixed], ttl); return err }
			}},
			side{"bare", func(b *testing.B) func(int) error {
				return func(i int) error { return c.GetEx(ctx, fixedFull[i%nfixed], ttl).Err() }
			}}},
		// The index script against the least a bare client would send for
		// the same effect without expiring members: ZADD and PEXPIRE in
		// one pipeline (one round trip).
		{"IndexAdd",
			side{"store", func(b *testing.B) func(int) error {
				return func(i int) error {
					return s.IndexAdd(ctx, "ix:"+strconv.Itoa(i%nfixed), fixed[(i/nfixed)%8], ttl)
				}
			}},
			side{"bare", func(b *testing.B) func(int) error {
				return func(i int) error {
					k := prefix + "bareix:" + strconv.Itoa(i%nfixed)
					pipe := c.Pipeline()
					pipe.ZAdd(ctx, k, redis.Z{Score: float64(time.Now().Add(ttl).UnixMilli()), Member: fixed[(i/nfixed)%8]})
					pipe.PExpire(ctx, k, ttl)
					_, err := pipe.Exec(ctx)
					return err
				}
			}}},
	}

}
