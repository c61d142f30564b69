package store_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stepupauth/stepup/store"
)

// BenchmarkMemory measures the in-memory store's operations on a store that
// already holds 100k records, as a busy process would.
func BenchmarkMemory(b *testing.B) {
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
	}
	b.Run("Set", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			if err := m.Set(ctx, keys[i&(len(keys)-1)], value, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			if _, err := m.Get(ctx, keys[i&(len(keys)-1)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SetThenTake", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			k := keys[i&(len(keys)-1)]
			if err := m.Set(ctx, k, value, time.Minute); err != nil {
				b.Fatal(err)
			}
			if _, err := m.Take(ctx, k); err != nil {
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
}
