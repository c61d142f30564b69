package stepup

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepupauth/stepup/internal/redistest"
	"github.com/stepupauth/stepup/redisstore"
	"github.com/stepupauth/stepup/store"
	"golang.org/x/oauth2"
)

// realisticSession starts the realistic session on c: a login with
// offline_access and one API audience, then an MFA step-up of the same
// session (its ID token kept, the API's tokens replaced). It returns the
// session's cookie value and handle.
func realisticSession(tb testing.TB, c *Client, now time.Time) (cookie string, s *Session) {
	tb.Helper()
	ctx := context.Background()
	idt := func(acr string, amr ...string) *IDToken {
		return &IDToken{
			Subject: "auth0|6543a1b2c3d4e5f6a7b8c9d0", SessionID: "S7kQ-1v9LxW8aZ3pT0mN2bYc4dEf5gHj", ACR: acr, AMR: amr, AuthTime: now,
			OrgID: "org_7bYc4dEf5gHjS7kQ",
			Email: "alice.martin@fabrikam.example", Name: "Alice Martin",
			Raw: "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0." + strings.Repeat("x", 700) + "." + strings.Repeat("s", 342),
		}
	}
	tok := func() *oauth2.Token {
		return (&oauth2.Token{
			AccessToken:  "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsxIn0." + strings.Repeat("y", 520) + "." + strings.Repeat("s", 342),
			TokenType:    "Bearer",
			RefreshToken: "v1.MR" + strings.Repeat("r", 120),
			Expiry:       now.Add(24 * time.Hour),
		}).WithExtra(map[string]any{"scope": "openid profile email offline_access read:salaries"})
	}
	s, err := c.StartSession(ctx, &LoginResult{IDToken: idt("", "pwd"), Token: tok(), Audience: "https://api.fabrikam.example", Policy: Login}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	s, err = c.StartSession(ctx, &LoginResult{IDToken: idt(ACRMultiFactor, "pwd", "mfa"), Token: tok(), Audience: "https://api.fabrikam.example", Policy: MFA}, s)
	if err != nil {
		tb.Fatal(err)
	}
	return c.SessionCookie(s).Value, s
}

// interleaved runs each op once per iteration, in turn (the order rotates),
// and reports each op's median latency (ns) and the ratio of the first op's
// median (the one measured) to each other's, the baselines: ops measured in
// the same run, under the same load. recordBytes is reported as is.
func interleaved(b *testing.B, recordBytes int, names []string, ops []func() error) {
	samples := make([][]time.Duration, len(ops))
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for k := range ops {
			j := (i + k) % len(ops)
			start := time.Now()
			if err := ops[j](); err != nil {
				b.Fatal(err)
			}
			samples[j] = append(samples[j], time.Since(start))
		}
		i++
	}
	b.StopTimer()
	med := make([]float64, len(ops))
	for k, s := range samples {
		slices.Sort(s)
		med[k] = float64(s[len(s)/2])
		b.ReportMetric(med[k], names[k]+"-ns")
	}
	for k := 1; k < len(ops); k++ {
		b.ReportMetric(med[0]/med[k], names[0]+"/"+names[k])
	}
	b.ReportMetric(float64(recordBytes), "record-bytes")
}

// benchStore returns the store a page-load benchmark runs on, with the raw
// get of a key (the baseline: the bare store call, no Client) and its name.
func benchStore(b *testing.B, kind string, now func() time.Time) (store.Store, string, func(ctx context.Context, key string) error, func(ctx context.Context, key string) error) {
	switch kind {
	case "memory":
		m := store.NewMemory(store.MemoryOptions{Now: now})
		b.Cleanup(func() { m.Close() })
		get := func(ctx context.Context, key string) error { _, err := m.Get(ctx, key); return err }
		return m, "Memory.Get", get, nil
	default:
		if os.Getenv(redistest.EnvAddr) == "" {
			b.Skip("no Redis: " + redistest.EnvAddr + " is not set")
		}
		rdb := redistest.Client(b)
		st, err := redisstore.New(rdb, redisstore.Options{Prefix: redistest.Prefix(b)})
		if err != nil {
			b.Fatal(err)
		}
		get := func(ctx context.Context, key string) error { return rdb.Get(ctx, st.Key(key)).Err() }
		getex := func(ctx context.Context, key string) error { return rdb.GetEx(ctx, st.Key(key), time.Hour).Err() }
		return st, "GET", get, getex
	}
}

// BenchmarkPageLoadInterleaved: a page load (LoadSession + CheckSession of
// the realistic session) against the bare store read of the same record
// bytes (copied to another key), interleaved. On Redis the baselines are a
// bare go-redis GET and GETEX PX of the same bytes. The "-nocache" cases
// turn the session cache off (Config.SessionCacheSize -1): every load opens,
// hashes and decodes, as the first load of a session (or the first after
// it changed) does. "redis-nobound" runs without the Client's own bound on
// store calls (Config.StoreTimeout -1): what the context.WithTimeout per
// call costs.
//
//	go test -run='^$' -bench=PageLoadInterleaved -benchmem -count=3 .
func BenchmarkPageLoadInterleaved(b *testing.B) {
	for _, kind := range []string{"memory", "redis", "memory-nocache", "redis-nocache", "redis-nobound"} {
		b.Run(kind, func(b *testing.B) {
			clock := newTestClock()
			storeKind, nocache := strings.CutSuffix(kind, "-nocache")
			storeKind, nobound := strings.CutSuffix(storeKind, "-nobound")
			st, baseName, get, getex := benchStore(b, storeKind, clock.Now)
			cacheSize := 0
			if nocache {
				cacheSize = -1
			}
			var storeTimeout time.Duration
			if nobound {
				storeTimeout = -1
			}
			c, err := New(context.Background(), Config{
				Domain: "fabrikam.eu.auth0.com", ClientID: "client-1", ClientSecret: "secret-1",
				RedirectURL: "https://app.example.com/callback", Store: st, SealingKeys: [][]byte{sealTestKey(7)},
				HTTPClient: noNetwork(b), Now: clock.Now, SessionCacheSize: cacheSize, StoreTimeout: storeTimeout,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			ctx := context.Background()
			cookie, s := realisticSession(b, c, clock.Now())
			raw, err := st.Get(ctx, c.sessionKey(s.Handle))
			if err != nil {
				b.Fatal(err)
			}
			if err := st.Set(ctx, "copy", raw, time.Hour); err != nil {
				b.Fatal(err)
			}
			pageLoad := func() error {
				s, err := c.LoadSession(ctx, cookie)
				if err != nil {
					return err
				}
				return c.CheckSession(s, MFA)
			}
			if getex != nil {
				interleaved(b, len(raw), []string{"page", "GETEX", baseName},
					[]func() error{pageLoad, func() error { return getex(ctx, "copy") }, func() error { return get(ctx, "copy") }})
				return
			}
			interleaved(b, len(raw), []string{"page", baseName}, []func() error{pageLoad, func() error { return get(ctx, "copy") }})
		})
	}
}

// BenchmarkTokenSourceValidInterleaved: TokenSource.Token while the access
// token is valid (the realistic session's API audience) against the bare
// store read of the same token-record bytes, interleaved.
//
//	go test -run='^$' -bench=TokenSourceValidInterleaved -benchmem -count=3 .
func BenchmarkTokenSourceValidInterleaved(b *testing.B) {
	for _, kind := range []string{"memory", "redis"} {
		b.Run(kind, func(b *testing.B) {
			clock := newTestClock()
			st, baseName, get, _ := benchStore(b, kind, clock.Now)
			c, err := New(context.Background(), Config{
				Domain: "fabrikam.eu.auth0.com", ClientID: "client-1", ClientSecret: "secret-1",
				RedirectURL: "https://app.example.com/callback", Store: st, SealingKeys: [][]byte{sealTestKey(7)},
				HTTPClient: noNetwork(b), Now: clock.Now,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			ctx := context.Background()
			_, s := realisticSession(b, c, clock.Now())
			raw, err := st.Get(ctx, c.tokenKey(s.Handle, "https://api.fabrikam.example"))
			if err != nil {
				b.Fatal(err)
			}
			if err := st.Set(ctx, "copy", raw, time.Hour); err != nil {
				b.Fatal(err)
			}
			ts := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: "https://api.fabrikam.example"})
			interleaved(b, len(raw), []string{"token", baseName}, []func() error{
				func() error { _, err := ts.Token(); return err },
				func() error { return get(ctx, "copy") },
			})
		})
	}
}
