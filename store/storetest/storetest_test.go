package storetest_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepupauth/stepup/store"
	"github.com/stepupauth/stepup/store/storetest"
)

// The suite must catch broken stores. Each broken store below runs the suite
// in a child process (a failing suite cannot run inside a passing test), which
// must fail, and fail in the subtest that checks the broken rule.

// broken wraps the memory store and breaks one rule of the contract.
type broken struct {
	*store.Memory
	kind  string
	now   func() time.Time
	mu    sync.Mutex // guards alias, last, first and sets
	alias map[string][]byte
	// last is the last value Set wrote per key ("getex-serves-expired").
	last map[string][]byte
	// first is the deadline of each index's first member
	// ("index-expires-with-first").
	first map[string]time.Time
	// sets are the indexes of "index-racy": read, copied, written back.
	sets map[string]map[string]time.Time
}

func (b *broken) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := b.Memory.Get(ctx, key)
	if b.kind == "aliasing" && err == nil {
		// Returns the caller's slice that Set kept instead of a copy.
		b.mu.Lock()
		defer b.mu.Unlock()
		if a, ok := b.alias[key]; ok {
			return a, nil
		}
	}
	return v, err
}

func (b *broken) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	switch b.kind {
	case "aliasing":
		b.mu.Lock()
		if b.alias == nil {
			b.alias = make(map[string][]byte)
		}
		b.alias[key] = value
		b.mu.Unlock()
	case "ignores-ctx":
		ctx = context.Background()
	case "never-expires":
		ttl = 1000 * 24 * time.Hour
	case "expires-early":
		ttl /= 2
	case "getex-serves-expired":
		b.mu.Lock()
		if b.last == nil {
			b.last = make(map[string][]byte)
		}
		b.last[key] = bytes.Clone(value)
		b.mu.Unlock()
	}
	return b.Memory.Set(ctx, key, value, ttl)
}

func (b *broken) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if b.kind == "racy-setnx" {
		// Check, then set: two racers both see the key absent.
		if _, err := b.Memory.Get(ctx, key); err == nil {
			return false, nil
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
		return true, b.Memory.Set(ctx, key, value, ttl)
	}
	return b.Memory.SetNX(ctx, key, value, ttl)
}

func (b *broken) Take(ctx context.Context, key string) ([]byte, error) {
	if b.kind == "racy-take" {
		// Get, then delete: several racers get the value.
		v, err := b.Memory.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
		return v, b.Memory.Delete(ctx, key)
	}
	return b.Memory.Take(ctx, key)
}

func (b *broken) GetEx(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	switch b.kind {
	case "getex-keeps-ttl":
		return b.Memory.Get(ctx, key)
	case "getex-creates":
		v, err := b.Memory.GetEx(ctx, key, ttl)
		if errors.Is(err, store.ErrNotFound) {
			b.Memory.Set(ctx, key, nil, ttl)
		}
		return v, err
	case "getex-racy":
		// Get, then Set the value read: a Set in between is undone.
		v, err := b.Memory.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
		return v, b.Memory.Set(ctx, key, v, ttl)
	case "getex-ignores-ctx":
		ctx = context.Background()
	case "getex-serves-expired":
		v, err := b.Memory.GetEx(ctx, key, ttl)
		if errors.Is(err, store.ErrNotFound) {
			b.mu.Lock()
			defer b.mu.Unlock()
			if old, ok := b.last[key]; ok {
				return bytes.Clone(old), nil
			}
		}
		return v, err
	}
	return b.Memory.GetEx(ctx, key, ttl)
}

func (b *broken) Delete(ctx context.Context, key string) error {
	if b.kind == "delete-keeps-index" {
		if m, _ := b.Memory.IndexMembers(ctx, key); len(m) > 0 {
			return nil
		}
	}
	return b.Memory.Delete(ctx, key)
}

func (b *broken) IndexAdd(ctx context.Context, key, member string, ttl time.Duration) error {
	switch b.kind {
	case "index-never-expires":
		ttl = 1000 * 24 * time.Hour
	case "index-readd-keeps-ttl":
		if m, _ := b.Memory.IndexMembers(ctx, key); slices.Contains(m, member) {
			return nil
		}
	case "index-accepts-empty-member":
		if member == "" {
			member = "(empty)"
		}
	case "index-ignores-ctx":
		ctx = context.Background()
	case "index-expires-with-first":
		// Every member expires when the index's first one does.
		b.mu.Lock()
		if b.first == nil {
			b.first = make(map[string]time.Time)
		}
		if m, _ := b.Memory.IndexMembers(ctx, key); len(m) == 0 {
			b.first[key] = b.now().Add(ttl)
		}
		ttl = b.first[key].Sub(b.now())
		b.mu.Unlock()
	case "index-racy":
		if err := ctx.Err(); err != nil {
			return err
		}
		if member == "" || ttl <= 0 {
			return b.Memory.IndexAdd(ctx, key, member, ttl)
		}
		// Read the set, copy it, write it back: racers overwrite each other.
		b.mu.Lock()
		set := maps.Clone(b.sets[key])
		b.mu.Unlock()
		runtime.Gosched()
		time.Sleep(time.Millisecond)
		if set == nil {
			set = make(map[string]time.Time)
		}
		set[member] = b.now().Add(ttl)
		b.mu.Lock()
		if b.sets == nil {
			b.sets = make(map[string]map[string]time.Time)
		}
		b.sets[key] = set
		b.mu.Unlock()
		return nil
	}
	return b.Memory.IndexAdd(ctx, key, member, ttl)
}

func (b *broken) IndexMembers(ctx context.Context, key string) ([]string, error) {
	if b.kind == "index-racy" {
		if _, err := b.Memory.IndexMembers(ctx, key); err != nil {
			return nil, err
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		var out []string
		for m, exp := range b.sets[key] {
			if b.now().Before(exp) {
				out = append(out, m)
			}
		}
		return out, nil
	}
	return b.Memory.IndexMembers(ctx, key)
}

func (b *broken) IndexRemove(ctx context.Context, key, member string) error {
	if b.kind == "index-racy" {
		if err := b.Memory.IndexRemove(ctx, key, member); err != nil {
			return err
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.sets[key], member)
		return nil
	}
	return b.Memory.IndexRemove(ctx, key, member)
}

// TestBrokenStoreChild runs the suite on one broken store when the parent
// test asks for it; otherwise it is skipped.
func TestBrokenStoreChild(t *testing.T) {
	kind := os.Getenv("STORETEST_BROKEN_KIND")
	if kind == "" {
		t.Skip("run by TestSuiteCatchesBrokenStores")
	}
	clk := storetest.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	storetest.Run(t, func(t *testing.T) store.Store {
		m := store.NewMemory(store.MemoryOptions{Now: clk.Now, SweepInterval: -1})
		t.Cleanup(func() { m.Close() })
		return &broken{Memory: m, kind: kind, now: clk.Now}
	}, storetest.WithClock(clk.Advance))
}

func TestSuiteCatchesBrokenStores(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	tests := []struct {
		kind     string
		failedIn string // a subtest that must fail
	}{
		{"racy-take", "TakeRace"},
		{"racy-setnx", "SetNXRace"},
		{"aliasing", "ValuesAreCopied"},
		{"ignores-ctx", "CanceledContext"},
		{"never-expires", "Expiry"},
		{"expires-early", "GetDoesNotExtendTTL"},
		{"getex-keeps-ttl", "GetExTTL"},
		{"getex-creates", "GetEx"},
		{"getex-racy", "GetExRace"},
		{"getex-ignores-ctx", "CanceledContext"},
		{"getex-serves-expired", "GetExTTL"},
		{"delete-keeps-index", "Index"},
		{"index-never-expires", "IndexMemberExpiry"},
		{"index-readd-keeps-ttl", "IndexReAddSetsTTL"},
		{"index-accepts-empty-member", "IndexInvalidArguments"},
		{"index-ignores-ctx", "CanceledContext"},
		{"index-expires-with-first", "IndexExpiresWithLastMember"},
		{"index-racy", "IndexAddRace"},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStoreChild$", "-test.v")
			cmd.Env = append(os.Environ(), "STORETEST_BROKEN_KIND="+tc.kind)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store with %s; output:\n%s", tc.kind, out)
			}
			want := "--- FAIL: TestBrokenStoreChild/" + tc.failedIn + " "
			if !strings.Contains(string(out), want) {
				t.Fatalf("the suite did not fail %s for a store with %s; output:\n%s", tc.failedIn, tc.kind, out)
			}
		})
	}
}

// The memory store, unbroken, passes in the same set-up (the control).
func TestUnbrokenStorePasses(t *testing.T) {
	clk := storetest.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	storetest.Run(t, func(t *testing.T) store.Store {
		m := store.NewMemory(store.MemoryOptions{Now: clk.Now, SweepInterval: -1})
		t.Cleanup(func() { m.Close() })
		return &broken{Memory: m, kind: "none", now: clk.Now}
	}, storetest.WithClock(clk.Advance))
}
