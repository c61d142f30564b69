package redisstore_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/internal/redistest"
	"github.com/stepupauth/stepup/redisstore"
	"github.com/stepupauth/stepup/store"
)

// The cost of the Client's two hot paths on Redis and on the in-memory
// store, in the same run: AuthorizeURL (every redirect to the tenant; no
// store call since the transaction is a cookie, so both stores cost the
// same) and LoadSession (one store read: every page load of a
// signed-in user), with 1 goroutine and with 64. Run them against the local
// Redis:
//
//	eval "$(scripts/redis.sh start)"
//	go test -run='^$' -bench=Replica -benchmem ./redisstore/
//
// In the AuthorizeURL benchmark, TransactionTTL is one second (it once kept
// the stores from accumulating transactions; it changes nothing now).

// benchStores returns the stores to compare, each made for b.
func benchStores() []struct {
	name string
	make func(b *testing.B) store.Store
} {
	return []struct {
		name string
		make func(b *testing.B) store.Store
	}{
		{"memory", func(b *testing.B) store.Store {
			m := store.NewMemory(store.MemoryOptions{})
			b.Cleanup(func() { m.Close() })
			return m
		}},
		{"redis", func(b *testing.B) store.Store {
			st, err := redisstore.New(redistest.Client(b), redisstore.Options{Prefix: redistest.Prefix(b)})
			if err != nil {
				b.Fatal(err)
			}
			return st
		}},
	}
}

func benchClient(b *testing.B, tn *auth0test.Tenant, st store.Store, txTTL time.Duration) *stepup.Client {
	b.Helper()
	app := auth0test.DefaultApplication()
	c, err := stepup.New(context.Background(), stepup.Config{
		Domain:         tn.Domain(),
		ClientID:       app.ClientID,
		ClientSecret:   app.ClientSecret,
		RedirectURL:    app.CallbackURLs[0],
		Store:          st,
		SealingKeys:    [][]byte{sealingKey},
		HTTPClient:     tn.Client(),
		TransactionTTL: txTTL,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// runG runs op b.N times on g goroutines (g a multiple of GOMAXPROCS).
func runG(b *testing.B, g int, op func(ctx context.Context) error) {
	ctx := context.Background()
	if g == 1 {
		for b.Loop() {
			if err := op(ctx); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(max(1, g/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReplicaBareRedis is the floor of the Redis figures, in the same
// run: the bare go-redis commands they send (SET PX of a transaction-sized
// value, GET of a session-sized one), without the Client.
func BenchmarkReplicaBareRedis(b *testing.B) {
	for _, g := range []int{1, 64} {
		b.Run(fmt.Sprintf("SET/g%d", g), func(b *testing.B) {
			rdb := redistest.Client(b)
			key, value := redistest.Prefix(b)+"tx", strings.Repeat("x", 600)
			b.ReportAllocs()
			runG(b, g, func(ctx context.Context) error { return rdb.Set(ctx, key, value, time.Second).Err() })
		})
		b.Run(fmt.Sprintf("GET/g%d", g), func(b *testing.B) {
			rdb := redistest.Client(b)
			key := redistest.Prefix(b) + "sess"
			if err := rdb.Set(context.Background(), key, strings.Repeat("x", 900), time.Hour).Err(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			runG(b, g, func(ctx context.Context) error { return rdb.Get(ctx, key).Err() })
		})
	}
}

func BenchmarkReplicaAuthorizeURL(b *testing.B) {
	tn := auth0test.NewTenant(b, auth0test.Config{})
	for _, sc := range benchStores() {
		for _, g := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/g%d", sc.name, g), func(b *testing.B) {
				c := benchClient(b, tn, sc.make(b), time.Second)
				opts := stepup.AuthorizeOptions{Policy: stepup.MFA, ReturnTo: "/salaries"}
				b.ReportAllocs()
				runG(b, g, func(ctx context.Context) error {
					_, err := c.AuthorizeURL(ctx, opts)
					return err
				})
			})
		}
	}
}

func BenchmarkReplicaLoadSession(b *testing.B) {
	tn := auth0test.NewTenant(b, auth0test.Config{})
	for _, sc := range benchStores() {
		for _, g := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/g%d", sc.name, g), func(b *testing.B) {
				ctx := context.Background()
				c := benchClient(b, tn, sc.make(b), 0)
				// One real login, whose session every iteration loads.
				ar, err := c.AuthorizeURL(ctx, stepup.AuthorizeOptions{})
				if err != nil {
					b.Fatal(err)
				}
				cb, err := tn.Login(ctx, ar.URL, alice)
				if err != nil {
					b.Fatal(err)
				}
				login, err := c.Exchange(ctx, cb.Query(), ar.Transaction)
				if err != nil {
					b.Fatal(err)
				}
				s, err := c.StartSession(ctx, login, nil)
				if err != nil {
					b.Fatal(err)
				}
				cookie := c.SessionCookie(s).Value
				b.ReportAllocs()
				b.ResetTimer()
				runG(b, g, func(ctx context.Context) error {
					_, err := c.LoadSession(ctx, cookie)
					return err
				})
			})
		}
	}
}
