package store_test

import (
	"context"
	"errors"
	"runtime"
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
