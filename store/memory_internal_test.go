package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestMemory(t *testing.T, opts MemoryOptions) (*Memory, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	opts.Now = clk.Now
	m := NewMemory(opts)
	t.Cleanup(func() { m.Close() })
	return m, clk
}

func (m *Memory) size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

func TestMemorySweepReclaimsExpiredInBatches(t *testing.T) {
	ctx := context.Background()
	m, clk := newTestMemory(t, MemoryOptions{SweepInterval: -1, SweepBatch: 7})
	for i := range 100 {
		ttl := time.Minute
		if i%2 == 0 {
			ttl = time.Second
		}
		if err := m.Set(ctx, fmt.Sprint("k", i), []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Second)
	m.sweep()
	if got, want := m.size(), 50; got != want {
		t.Fatalf("after sweep: %d entries, want %d", got, want)
	}
	for i := 1; i < 100; i += 2 {
		if _, err := m.Get(ctx, fmt.Sprint("k", i)); err != nil {
			t.Fatalf("live key k%d: %v", i, err)
		}
	}
	// The heap index stays consistent with the map.
	m.mu.Lock()
	for i, e := range m.byExpiry {
		if e.index != i || m.entries[e.key] != e {
			t.Errorf("heap entry %d (%q) inconsistent: index %d", i, e.key, e.index)
		}
	}
	m.mu.Unlock()
}

func TestMemoryWritesReclaimWithoutSweep(t *testing.T) {
	ctx := context.Background()
	m, clk := newTestMemory(t, MemoryOptions{SweepInterval: -1})
	for i := range 10 {
		if err := m.Set(ctx, fmt.Sprint("old", i), nil, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Second)
	for i := range 5 {
		if err := m.Set(ctx, fmt.Sprint("new", i), nil, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// Each of the 5 writes reclaimed writeReclaim expired records.
	if got, want := m.size(), 5; got != want {
		t.Fatalf("%d entries, want %d", got, want)
	}
}

func TestMemoryMaxEntries(t *testing.T) {
	ctx := context.Background()
	m, clk := newTestMemory(t, MemoryOptions{SweepInterval: -1, MaxEntries: 3})
	for i := range 3 {
		if err := m.Set(ctx, fmt.Sprint("k", i), nil, time.Duration(i+1)*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	err := m.Set(ctx, "k3", nil, time.Second)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Set on a full store: got %v, want ErrUnavailable", err)
	}
	if ok, err := m.SetNX(ctx, "k3", nil, time.Second); ok || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("SetNX on a full store: got %v, %v, want false, ErrUnavailable", ok, err)
	}
	// Replacing an existing key needs no room.
	if err := m.Set(ctx, "k0", []byte("x"), time.Second); err != nil {
		t.Fatalf("Set of an existing key on a full store: %v", err)
	}
	// Once one record has expired there is room again.
	clk.Advance(time.Second)
	if err := m.Set(ctx, "k3", nil, time.Second); err != nil {
		t.Fatalf("Set after expiry freed room: %v", err)
	}
	if _, err := m.Get(ctx, "k0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get expired k0: got %v, want ErrNotFound", err)
	}
}

func TestMemoryCloseIdempotentAndFailsClosed(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{SweepInterval: time.Millisecond})
	if err := m.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); m.Close() }()
	}
	wg.Wait()
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.Get(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Get after Close: got %v, want ErrUnavailable", err)
	}
	if err := m.Set(ctx, "k", nil, time.Hour); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Set after Close: got %v, want ErrUnavailable", err)
	}
	if _, err := m.SetNX(ctx, "k", nil, time.Hour); !errors.Is(err, ErrUnavailable) {
		t.Errorf("SetNX after Close: got %v, want ErrUnavailable", err)
	}
	if _, err := m.Take(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Take after Close: got %v, want ErrUnavailable", err)
	}
	if err := m.Delete(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Delete after Close: got %v, want ErrUnavailable", err)
	}
}

// The sweep goroutine really runs: with a short interval, expired records
// disappear without anyone touching their keys.
func TestMemorySweepGoroutine(t *testing.T) {
	ctx := context.Background()
	m, clk := newTestMemory(t, MemoryOptions{SweepInterval: time.Millisecond})
	if err := m.Set(ctx, "k", nil, time.Second); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for m.size() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sweep goroutine did not reclaim the expired record within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMemoryExpiryBoundary(t *testing.T) {
	ctx := context.Background()
	m, clk := newTestMemory(t, MemoryOptions{SweepInterval: -1})
	if err := m.Set(ctx, "k", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second - time.Nanosecond)
	if _, err := m.Get(ctx, "k"); err != nil {
		t.Fatalf("1ns before expiry: %v", err)
	}
	clk.Advance(time.Nanosecond)
	if _, err := m.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("at expiry: got %v, want ErrNotFound", err)
	}
}
