package redisstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/stepupauth/stepup/internal/redistest"
)

// 50,000 anonymous navigations to a protected page on a Client whose store
// is a real redis-server: not one command reaches Redis and DBSIZE does not
// move (the transaction of each redirect is the browser's cookie). Before,
// each wrote a ~3 KB record kept 10 minutes, enough for a flood to evict
// signed-in users' sessions under volatile-lru. The Client's keys live in a
// logical database of their own (no other test uses DB 13), so DBSIZE counts
// only what this test's Client writes.
func TestReplicasAnonymousFloodWritesNothing(t *testing.T) {
	addr := os.Getenv(redistest.EnvAddr)
	if addr == "" {
		redistest.Unavailable(t, redistest.EnvAddr+" is not set: this test needs a redis-server")
	}
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: 13, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	rs := newReplicaSet(t, rdb, replicaOpts{n: 1})
	before, err := rdb.DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := redistest.CountCommands(rdb)
	page := rs.clients[0].RequireLogin(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("served an anonymous request")
	}))
	navigations := 50_000
	if testing.Short() {
		navigations = 5_000
	}
	r := httptest.NewRequest(http.MethodGet, pathPrivate, nil)
	r.Header.Set("Accept", "text/html")
	for range navigations {
		w := httptest.NewRecorder()
		page.ServeHTTP(w, r)
		if w.Code != http.StatusFound {
			t.Fatalf("anonymous navigation: %d, want 302 to the tenant", w.Code)
		}
	}
	if got := n.Commands(); len(got) != 0 {
		t.Errorf("%d anonymous navigations sent %d commands to Redis (%q...), want none", navigations, len(got), got[:min(len(got), 3)])
	}
	after, err := rdb.DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("DBSIZE went from %d to %d over %d anonymous navigations, want unchanged", before, after, navigations)
	}
}
