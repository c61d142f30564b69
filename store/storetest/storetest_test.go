package storetest_test

import (
	"context"
	"os"
	"os/exec"
	"runtime"
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
	mu    sync.Mutex // guards alias
	alias map[string][]byte
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
		return &broken{Memory: m, kind: kind}
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
		return &broken{Memory: m, kind: "none"}
	}, storetest.WithClock(clk.Advance))
}
