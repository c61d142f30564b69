package stepup

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stepupauth/stepup/store"
)

// TestReleaseLeaseBoundedOnFrozenStore: releasing a refresh lease is
// detached from the caller (it must happen even if the job gave up) but
// bounded: a store that stopped answering must not hold the worker forever.
func TestReleaseLeaseBoundedOnFrozenStore(t *testing.T) {
	mem := store.NewMemory(store.MemoryOptions{})
	t.Cleanup(func() { mem.Close() })
	fs := &frozenStore{Store: mem}
	c, err := New(context.Background(), Config{
		Domain: "tenant.example", ClientID: "client", ClientSecret: "secret",
		RedirectURL: "https://app.example/callback", Store: fs,
		SealingKeys: [][]byte{sealTestKey(7)},
		HTTPClient:  &http.Client{Transport: unreachable{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ts := c.TokenSource(context.Background(), randomToken(), TokenSourceOptions{LeaseTTL: 2 * time.Second})
	fs.frozen.Store(true)

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the job has already given up
	done := make(chan struct{})
	start := time.Now()
	go func() {
		ts.releaseLease(ctx, "refresh-token", 0, "invalid_grant")
		close(done)
	}()
	select {
	case <-done:
		if d := time.Since(start); d < 500*time.Millisecond {
			t.Errorf("releaseLease returned after %v: it gave up with the caller instead of trying the store", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("releaseLease still blocked on a frozen store after 10 s")
	}
}
