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
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += s.m.len() + len(s.ix)
		s.mu.Unlock()
	}
	return n
}

// checkInvariants checks the bookkeeping: every record has a heap item at
// or before its deadline, every index one at or before its earliest
// member's; no key is both; indexes have members; the heaps are heaps and
// bounded; the entry count is right.
func (m *Memory) checkInvariants(t *testing.T) {
	t.Helper()
	var entries int64
	for si := range m.shards {
		s := &m.shards[si]
		s.mu.Lock()
		for j := 1; j < len(s.heap); j++ {
			if s.heap[(j-1)/2].at > s.heap[j].at {
				t.Errorf("shard %d: heap order broken at %d", si, j)
			}
		}
		firstItem := make(map[string]int64)
		for _, d := range s.heap {
			if at, ok := firstItem[d.key]; !ok || d.at < at {
				firstItem[d.key] = d.at
			}
		}
		s.m.checkTable(t, m.hash)
		for key, e := range s.m.all() {
			entries++
			if _, both := s.ix[key]; both {
				t.Errorf("%q is both a record and an index", key)
			}
			if at, ok := firstItem[key]; !ok || at > e.expires {
				t.Errorf("record %q (deadline %d) has no heap item at or before it (first: %d, %v)", key, e.expires, at, ok)
			}
		}
		for key, x := range s.ix {
			if len(x.members) == 0 {
				t.Errorf("index %q has no members but is kept", key)
			}
			entries += int64(len(x.members))
			if at, ok := firstItem[key]; !ok || at > earliest(x.members) {
				t.Errorf("index %q has no heap item at or before its earliest member", key)
			}
		}
		if len(s.heap) > 2*(s.m.len()+len(s.ix))+64+1 {
			t.Errorf("shard %d: heap of %d items for %d keys", si, len(s.heap), s.m.len()+len(s.ix))
		}
		s.mu.Unlock()
	}
	if m.maxEntries > 0 && m.entries.Load() != entries {
		t.Errorf("entry count %d, want %d", m.entries.Load(), entries)
	}
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
	m.checkInvariants(t)
}

func TestMemoryWritesReclaimWithoutSweep(t *testing.T) {
	ctx := context.Background()
	m, clk := newTestMemory(t, MemoryOptions{SweepInterval: -1})
	for i := range 100 {
		if err := m.Set(ctx, fmt.Sprint("old", i), nil, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Second)
	// Each write of a new key handles writeReclaim due items of its shard:
	// 2,000 writes over 64 shards (about 31 per shard, each shard holding
	// about 2 expired records) leave nothing expired behind.
	for i := range 2000 {
		if err := m.Set(ctx, fmt.Sprint("new", i), nil, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := m.size(), 2000; got != want {
		t.Fatalf("%d entries, want %d", got, want)
	}
	m.checkInvariants(t)
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
	if _, err := m.GetEx(ctx, "k", time.Hour); !errors.Is(err, ErrUnavailable) {
		t.Errorf("GetEx after Close: got %v, want ErrUnavailable", err)
	}
	if err := m.IndexAdd(ctx, "ix", "m", time.Hour); !errors.Is(err, ErrUnavailable) {
		t.Errorf("IndexAdd after Close: got %v, want ErrUnavailable", err)
	}
	if _, err := m.IndexMembers(ctx, "ix"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("IndexMembers after Close: got %v, want ErrUnavailable", err)
	}
	if err := m.IndexRemove(ctx, "ix", "m"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("IndexRemove after Close: got %v, want ErrUnavailable", err)
	}
}

// Extending, shortening and replacing records many times leaves the expiry
// heap O(live records): stale items are dropped or the heap rebuilt.
func TestMemoryHeapStaysBounded(t *testing.T) {
	ctx := context.Background()
	m, clk := newTestMemory(t, MemoryOptions{SweepInterval: -1})
	for i := range 10_000 {
		k := fmt.Sprint("k", i%50)
		var err error
		switch i % 4 {
		case 0:
			err = m.Set(ctx, k, []byte("v"), time.Hour)
		case 1:
			_, err = m.GetEx(ctx, k, time.Duration(1+i%7)*time.Minute) // shorter: a new item
			if errors.Is(err, ErrNotFound) {
				err = nil
			}
		case 2:
			err = m.IndexAdd(ctx, "ix"+k, fmt.Sprint("m", i%3), time.Duration(1+i%5)*time.Minute)
		case 3:
			_, err = m.Take(ctx, k)
			if errors.Is(err, ErrNotFound) {
				err = nil
			}
		}
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
		if i%1000 == 0 {
			clk.Advance(30 * time.Second)
		}
	}
	m.checkInvariants(t)
	items := 0
	for i := range m.shards {
		items += len(m.shards[i].heap)
	}
	if max := 2*m.size() + 65*shardCount; items > max {
		t.Fatalf("%d heap items for %d keys, want at most %d", items, m.size(), max)
	}
	// Everything expires and is reclaimed, indexes included.
	clk.Advance(2 * time.Hour)
	m.sweep()
	if n := m.size(); n != 0 {
		t.Fatalf("after everything expired and a sweep: %d keys left", n)
	}
	m.checkInvariants(t)
}

// Index members count against MaxEntries, expired ones are reclaimed to
// make room, and nothing live is evicted.
func TestMemoryMaxEntriesIndexes(t *testing.T) {
	ctx := context.Background()
	m, clk := newTestMemory(t, MemoryOptions{SweepInterval: -1, MaxEntries: 4})
	for _, member := range []string{"a", "b", "c"} {
		if err := m.IndexAdd(ctx, "ix", member, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Set(ctx, "rec", nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := m.IndexAdd(ctx, "ix", "d", time.Minute); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("IndexAdd of a fifth entry: %v, want ErrUnavailable", err)
	}
	if err := m.IndexAdd(ctx, "ix2", "x", time.Minute); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("IndexAdd of a new index on a full store: %v, want ErrUnavailable", err)
	}
	// Re-adding a member needs no room.
	if err := m.IndexAdd(ctx, "ix", "a", 2*time.Minute); err != nil {
		t.Fatalf("IndexAdd of an existing member on a full store: %v", err)
	}
	if err := m.IndexRemove(ctx, "ix", "b"); err != nil {
		t.Fatal(err)
	}
	if err := m.IndexAdd(ctx, "ix2", "x", time.Hour); err != nil {
		t.Fatalf("IndexAdd after a removal freed an entry: %v", err)
	}
	m.checkInvariants(t)
	// c expires: its entry is reclaimed for a new record; a stays.
	clk.Advance(time.Minute)
	if err := m.Set(ctx, "rec2", nil, time.Hour); err != nil {
		t.Fatalf("Set after a member expired: %v", err)
	}
	got, err := m.IndexMembers(ctx, "ix")
	if err != nil || len(got) != 1 || got[0] != "a" {
		t.Fatalf("IndexMembers(ix) = %q, %v; want [a]", got, err)
	}
	m.checkInvariants(t)
	// Delete frees an index's entries.
	if err := m.Delete(ctx, "ix"); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(ctx, "rec3", nil, time.Hour); err != nil {
		t.Fatalf("Set after Delete of an index: %v", err)
	}
	m.checkInvariants(t)
}

// Racing writers on a bounded store: exactly MaxEntries new keys get in,
// the rest fail with ErrUnavailable.
func TestMemoryMaxEntriesRace(t *testing.T) {
	ctx := context.Background()
	m, _ := newTestMemory(t, MemoryOptions{SweepInterval: -1, MaxEntries: 100})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, full int
	)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				var err error
				if i%2 == 0 {
					err = m.Set(ctx, fmt.Sprint("k", g, "-", i), nil, time.Hour)
				} else {
					err = m.IndexAdd(ctx, fmt.Sprint("ix", g%8), fmt.Sprint(g, "-", i), time.Hour)
				}
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrUnavailable):
					full++
				default:
					t.Errorf("write: %v", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 100 || full != 540 {
		t.Fatalf("%d writes succeeded and %d were refused, want 100 and 540", ok, full)
	}
	m.checkInvariants(t)
}

// A key holds a record or an index: an index op on a live record is
// refused, and Set over an index replaces it.
func TestMemoryRecordOrIndex(t *testing.T) {
	ctx := context.Background()
	m, clk := newTestMemory(t, MemoryOptions{SweepInterval: -1, MaxEntries: 10})
	if err := m.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := m.IndexAdd(ctx, "k", "m", time.Minute); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("IndexAdd on a record: %v, want ErrInvalidArgument", err)
	}
	clk.Advance(time.Minute)
	if err := m.IndexAdd(ctx, "k", "m", time.Minute); err != nil {
		t.Fatalf("IndexAdd on an expired record: %v", err)
	}
	if _, err := m.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of an index: %v, want ErrNotFound", err)
	}
	if ok, err := m.SetNX(ctx, "k", nil, time.Minute); ok || err != nil {
		t.Fatalf("SetNX on a live index = %v, %v; want false, nil", ok, err)
	}
	if err := m.IndexAdd(ctx, "k", "m2", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(ctx, "k", []byte("v2"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := m.Get(ctx, "k"); err != nil || string(v) != "v2" {
		t.Fatalf("Get after Set over an index = %q, %v", v, err)
	}
	m.checkInvariants(t)
	// An index whose members have all expired is absent for SetNX, even
	// when its latest member was removed before.
	if err := m.IndexAdd(ctx, "j", "short", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := m.IndexAdd(ctx, "j", "long", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := m.IndexRemove(ctx, "j", "long"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if ok, err := m.SetNX(ctx, "j", []byte("r"), time.Minute); !ok || err != nil {
		t.Fatalf("SetNX over an index of expired members = %v, %v; want true, nil", ok, err)
	}
	m.checkInvariants(t)
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
