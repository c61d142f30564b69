package store_test

import (
	"context"
	"errors"
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

// GetExUnchanged moves the TTL as GetEx does, copies nothing when the value
// is the caller's, and returns a copy of it otherwise; a nil prev never
// matches (not even an empty value); errors are GetEx's.
func TestMemoryGetExUnchanged(t *testing.T) {
	clk := storetest.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	m := store.NewMemory(store.MemoryOptions{Now: clk.Now, SweepInterval: -1})
	defer m.Close()
	ctx := context.Background()
	if err := m.Set(ctx, "k", []byte("v1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	v, same, err := m.GetExUnchanged(ctx, "k", time.Hour, []byte("v1"))
	if err != nil || !same || v != nil {
		t.Fatalf("unchanged value: %q, %v, %v; want nil, true, nil", v, same, err)
	}
	clk.Advance(30 * time.Minute) // past the first TTL: GetExUnchanged moved it
	v, same, err = m.GetExUnchanged(ctx, "k", time.Hour, []byte("v0"))
	if err != nil || same || string(v) != "v1" {
		t.Fatalf("another value: %q, %v, %v; want v1, false, nil", v, same, err)
	}
	v[0] = 'X' // the caller's copy
	if got, _ := m.Get(ctx, "k"); string(got) != "v1" {
		t.Fatalf("the store's value after a change to the returned copy: %q", got)
	}
	if err := m.Set(ctx, "empty", []byte{}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, same, err := m.GetExUnchanged(ctx, "empty", time.Minute, nil); err != nil || same || v == nil || len(v) != 0 {
		t.Fatalf("a nil prev against an empty value: %q (nil %v), %v, %v; want an empty copy, false", v, v == nil, same, err)
	}
	clk.Advance(2 * time.Hour)
	if _, _, err := m.GetExUnchanged(ctx, "k", time.Hour, []byte("v1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired record: %v, want ErrNotFound", err)
	}
	if _, _, err := m.GetExUnchanged(ctx, "k", 0, nil); !errors.Is(err, store.ErrInvalidArgument) {
		t.Fatalf("a zero TTL: %v, want ErrInvalidArgument", err)
	}
}
