package store_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepupauth/stepup/store"
)

// mutexMap is the baseline the memory store is measured against: a
// map[string][]byte behind one sync.Mutex that makes exactly the copies the
// Store contract requires (Set copies the value before it returns, outside
// the lock; Get returns a copy made under the lock; Take deletes and hands
// out the stored slice) and nothing else: no TTL, no clock, no context or
// argument checks, no bound.
type mutexMap struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (mm *mutexMap) Set(_ context.Context, key string, value []byte, _ time.Duration) error {
	v := make([]byte, len(value))
	copy(v, value)
	mm.mu.Lock()
	mm.m[key] = v
	mm.mu.Unlock()
	return nil
}

func (mm *mutexMap) Get(_ context.Context, key string) ([]byte, error) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	v, ok := mm.m[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	c := make([]byte, len(v))
	copy(c, v)
	return c, nil
}

func (mm *mutexMap) Take(_ context.Context, key string) ([]byte, error) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	v, ok := mm.m[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	delete(mm.m, key)
	return v, nil
}

// mutexMapClock is mutexMap plus what exact expiry costs at the least: a
// deadline per record and one reading of time.Now per operation. It is not
// the baseline (the contract asks for expiry, the baseline has none); it
// shows how much of the memory store's cost is the clock.
type mutexMapClock struct {
	mu sync.Mutex
	m  map[string]timed
}

type timed struct {
	v   []byte
	exp int64
}

func (mm *mutexMapClock) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	v := make([]byte, len(value))
	copy(v, value)
	mm.mu.Lock()
	mm.m[key] = timed{v, time.Now().UnixNano() + int64(ttl)}
	mm.mu.Unlock()
	return nil
}

func (mm *mutexMapClock) Get(_ context.Context, key string) ([]byte, error) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	e, ok := mm.m[key]
	if !ok || time.Now().UnixNano() >= e.exp {
		return nil, store.ErrNotFound
	}
	c := make([]byte, len(e.v))
	copy(c, e.v)
	return c, nil
}

func (mm *mutexMapClock) Take(_ context.Context, key string) ([]byte, error) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	e, ok := mm.m[key]
	if !ok || time.Now().UnixNano() >= e.exp {
		return nil, store.ErrNotFound
	}
	delete(mm.m, key)
	return e.v, nil
}

type benchStore interface {
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Get(ctx context.Context, key string) ([]byte, error)
	Take(ctx context.Context, key string) ([]byte, error)
}

// BenchmarkStoreVsMutexMap measures Set, Get and Take of the memory store
// and of the mutexMap baseline, one after the other in each round (run it
// with -count for interleaved samples), with 1 goroutine and with 64
// (b.SetParallelism on GOMAXPROCS). Each store already holds 100k records of
// 256 bytes, as a busy process would; values are 256 bytes. Set writes over
// 65,536 keys (mostly replacing), Get reads 65,536 present keys, Take takes
// b.N distinct present keys (filled before the timer starts, so run it with
// a fixed -benchtime such as 300000x).
func BenchmarkStoreVsMutexMap(b *testing.B) {
	ctx := context.Background()
	value := make([]byte, 256)
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "sess:" + strconv.Itoa(i)
	}
	impls := []struct {
		name string
		make func() (benchStore, func())
	}{
		{"Memory", func() (benchStore, func()) {
			m := store.NewMemory(store.MemoryOptions{})
			return m, func() { m.Close() }
		}},
		{"MutexMap", func() (benchStore, func()) {
			return &mutexMap{m: make(map[string][]byte)}, func() {}
		}},
		{"MutexMapClock", func() (benchStore, func()) {
			return &mutexMapClock{m: make(map[string]timed)}, func() {}
		}},
	}
	fresh := func(b *testing.B, mk func() (benchStore, func())) benchStore {
		st, done := mk()
		b.Cleanup(done)
		for i := range 100_000 {
			if err := st.Set(ctx, "base:"+strconv.Itoa(i), value, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
		for _, k := range keys {
			if err := st.Set(ctx, k, value, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
		return st
	}
	for _, g := range []int{1, 64} {
		run := func(b *testing.B, op func(st benchStore, i int) error, st benchStore) {
			b.ReportAllocs()
			b.ResetTimer()
			if g == 1 {
				for i := range b.N {
					if err := op(st, i); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			var next atomic.Int64
			b.SetParallelism(max(1, g/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op(st, int(next.Add(1)-1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		for _, opName := range []string{"Set", "Get", "Take"} {
			for _, impl := range impls {
				b.Run(opName+"/g="+strconv.Itoa(g)+"/"+impl.name, func(b *testing.B) {
					st := fresh(b, impl.make)
					var op func(st benchStore, i int) error
					switch opName {
					case "Set":
						op = func(st benchStore, i int) error {
							return st.Set(ctx, keys[i&(len(keys)-1)], value, time.Hour)
						}
					case "Get":
						op = func(st benchStore, i int) error {
							_, err := st.Get(ctx, keys[i&(len(keys)-1)])
							return err
						}
					case "Take":
						tk := make([]string, b.N)
						for i := range tk {
							tk[i] = "tx:" + strconv.Itoa(i)
							if err := st.Set(ctx, tk[i], value, time.Hour); err != nil {
								b.Fatal(err)
							}
						}
						op = func(st benchStore, i int) error {
							v, err := st.Take(ctx, tk[i])
							if err == nil && len(v) != len(value) {
								err = errors.New("short value")
							}
							return err
						}
					}
					run(b, op, st)
				})
			}
		}
	}
}

// BenchmarkMemoryOps measures the operations the baseline has no
// counterpart for, on a store holding 100k records.
func BenchmarkMemoryOps(b *testing.B) {
	ctx := context.Background()
	m := store.NewMemory(store.MemoryOptions{})
	defer m.Close()
	value := make([]byte, 256)
	for i := range 100_000 {
		if err := m.Set(ctx, "base:"+strconv.Itoa(i), value, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "k:" + strconv.Itoa(i)
		if err := m.Set(ctx, keys[i], value, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("GetEx", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			if _, err := m.GetEx(ctx, keys[i&(len(keys)-1)], time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SetNXParallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				m.SetNX(ctx, keys[i&(len(keys)-1)], value, time.Minute)
				i++
			}
		})
	})
	users := make([]string, 1024)
	for i := range users {
		users[i] = "user:" + strconv.Itoa(i)
	}
	b.Run("IndexAdd", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			// 1,024 indexes of up to 8 members each.
			if err := m.IndexAdd(ctx, users[i&1023], keys[(i>>10)&7], time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStoreRatio measures the memory store against the mutexMap
// baseline interleaved finely, so that a machine whose load changes from
// second to second (a shared CI box) affects both alike: b.N operations per
// store, in chunks of 16,384 that alternate between the stores (the order
// flipping each round), each chunk run by 1 goroutine or spread over 64
// waiting workers. It reports each store's ns/op and speed-vs-MutexMap (the
// baseline's time over the store's: 1 is as fast as the baseline, above 1
// faster), over the whole run and as the median of the rounds' ratios
// (p50-..., which resists a burst of load that hit one store's chunk).
// Set writes over 65,536 keys, Get reads 65,536 present keys, Take
// takes b.N distinct present keys; every store first holds 100k records of
// 256 bytes; values are 256 bytes.
func BenchmarkStoreRatio(b *testing.B) {
	ctx := context.Background()
	value := make([]byte, 256)
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "sess:" + strconv.Itoa(i)
	}
	for _, g := range []int{1, 64} {
		for _, opName := range []string{"Set", "Get", "Take"} {
			b.Run(opName+"/g="+strconv.Itoa(g), func(b *testing.B) {
				impls := []struct {
					name string
					st   benchStore
					tk   []string
					took time.Duration
				}{
					{name: "Memory", st: store.NewMemory(store.MemoryOptions{})},
					{name: "MutexMap", st: &mutexMap{m: make(map[string][]byte)}},
					{name: "MutexMapClock", st: &mutexMapClock{m: make(map[string]timed)}},
				}
				defer impls[0].st.(*store.Memory).Close()
				for k := range impls {
					st := impls[k].st
					for i := range 100_000 {
						st.Set(ctx, "base:"+strconv.Itoa(i), value, time.Hour)
					}
					for _, key := range keys {
						st.Set(ctx, key, value, time.Hour)
					}
					if opName == "Take" {
						impls[k].tk = make([]string, b.N)
						for i := range b.N {
							impls[k].tk[i] = "tx:" + strconv.Itoa(i)
							st.Set(ctx, impls[k].tk[i], value, time.Hour)
						}
					}
				}
				op := func(k, i int) error {
					st := impls[k].st
					switch opName {
					case "Set":
						return st.Set(ctx, keys[i&(len(keys)-1)], value, time.Hour)
					case "Get":
						_, err := st.Get(ctx, keys[i&(len(keys)-1)])
						return err
					default:
						_, err := st.Take(ctx, impls[k].tk[i])
						return err
					}
				}
				// Workers for g > 1: each chunk, every worker runs its share.
				type chunk struct{ k, from, to int }
				work := make(chan chunk)
				var wg sync.WaitGroup
				var failed atomic.Value
				for range g {
					go func() {
						for c := range work {
							for i := c.from; i < c.to; i++ {
								if err := op(c.k, i); err != nil {
									failed.Store(err)
								}
							}
							wg.Done()
						}
					}()
				}
				defer close(work)
				const size = 4096
				var ratios, ratiosClock []float64 // per round: baseline chunk time / Memory chunk time
				b.ResetTimer()
				for from, round := 0, 0; from < b.N; from, round = from+size, round+1 {
					to := min(from+size, b.N)
					var took [3]time.Duration
					for j := range impls {
						k := j
						if round%2 == 1 {
							k = len(impls) - 1 - j
						}
						start := time.Now()
						if g == 1 {
							for i := from; i < to; i++ {
								if err := op(k, i); err != nil {
									b.Fatal(err)
								}
							}
						} else {
							per := (to - from + g - 1) / g
							for w := range g {
								lo, hi := from+w*per, min(from+(w+1)*per, to)
								if lo >= hi {
									break
								}
								wg.Add(1)
								work <- chunk{k, lo, hi}
							}
							wg.Wait()
						}
						took[k] = time.Since(start)
						impls[k].took += took[k]
					}
					ratios = append(ratios, float64(took[1])/float64(took[0]))
					ratiosClock = append(ratiosClock, float64(took[2])/float64(took[0]))
				}
				b.StopTimer()
				if err, _ := failed.Load().(error); err != nil {
					b.Fatal(err)
				}
				for _, im := range impls {
					b.ReportMetric(float64(im.took.Nanoseconds())/float64(b.N), im.name+"-ns/op")
				}
				b.ReportMetric(float64(impls[1].took)/float64(impls[0].took), "speed-vs-MutexMap")
				b.ReportMetric(float64(impls[2].took)/float64(impls[0].took), "speed-vs-MutexMapClock")
				slices.Sort(ratios)
				slices.Sort(ratiosClock)
				b.ReportMetric(ratios[len(ratios)/2], "p50-speed-vs-MutexMap")
				b.ReportMetric(ratiosClock[len(ratiosClock)/2], "p50-speed-vs-MutexMapClock")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
