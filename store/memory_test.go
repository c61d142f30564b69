package store_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepupauth/stepup/store"
	"github.com/stepupauth/stepup/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	clk := storetest.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	storetest.Run(t, func(t *testing.T) store.Store {
		m := store.NewMemory(store.MemoryOptions{Now: clk.Now})
		t.Cleanup(func() { m.Close() })
		return m
	}, storetest.WithClock(clk.Advance))
}

// With a bound on entries the store still conforms (the suite stays under it).
func TestMemoryConformanceBounded(t *testing.T) {
	clk := storetest.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	storetest.Run(t, func(t *testing.T) store.Store {
		m := store.NewMemory(store.MemoryOptions{Now: clk.Now, MaxEntries: 1000, SweepInterval: -1})
		t.Cleanup(func() { m.Close() })
		return m
	}, storetest.WithClock(clk.Advance))
}

// An injected clock that panics (user code, under a shard's lock) leaves
// no shard locked: the store keeps serving once the clock behaves.
func TestMemoryClockPanicLeavesNoLockHeld(t *testing.T) {
	var boom atomic.Bool
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	m := store.NewMemory(store.MemoryOptions{SweepInterval: -1, Now: func() time.Time {
		if boom.Load() {
			panic("clock")
		}
		return at
	}})
	t.Cleanup(func() {
		if !t.Failed() { // a shard left locked would hang Close
			m.Close()
		}
	})
	ctx := context.Background()
	ops := map[string]func(){
		"Get":   func() { m.Get(ctx, "k") },
		"GetEx": func() { m.GetEx(ctx, "k", time.Hour) },
		"Take":  func() { m.Take(ctx, "k") },
		"Set":   func() { m.Set(ctx, "k", []byte("v"), time.Hour) },
		"SetNX": func() { m.SetNX(ctx, "k", []byte("v"), time.Hour) },
	}
	for name, op := range ops {
		if err := m.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
		boom.Store(true)
		func() {
			defer func() { _ = recover() }()
			op()
		}()
		boom.Store(false)
		done := make(chan error, 1)
		go func() { done <- m.Set(ctx, "k", []byte("v"), time.Hour) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("after %s's clock panicked: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("after %s's clock panicked, the key's shard stays locked", name)
		}
	}
}
