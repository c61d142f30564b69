package stepup

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSplitScope compares splitScope with strings.Fields on strings of
// ASCII bytes (for which they agree: both split on ASCII white space only).
func TestSplitScope(t *testing.T) {
	alphabet := []byte{' ', '\t', '\n', '\v', '\f', '\r', 0, 1, 8, 14, 0x1f, '!', 'a', ':', 0x7f}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		b := make([]byte, r.IntN(12))
		for k := range b {
			b[k] = alphabet[r.IntN(len(alphabet))]
		}
		s := string(b)
		var arena []string
		got := splitScope(s, &arena)
		want := strings.Fields(s)
		if len(want) == 0 {
			want = nil
		}
		if !slices.Equal(got, want) || (got == nil) != (want == nil) {
			t.Fatalf("splitScope(%q) = %q, want %q", s, got, want)
		}
	}
}

// FuzzDecodeClaims checks the claims decoder against decodeJSONObject: a
// payload it accepts always gives a Claims map, with the same registered
// values; one that decodeJSONObject refuses it refuses too.
func FuzzDecodeClaims(f *testing.F) {
	for _, s := range []string{
		`{"iss":"https://x/","sub":"auth0|a","aud":["a","b"],"iat":1700000000,"exp":1.7e9,"scope":"a b  c","permissions":["p"],"azp":"c","org_id":"o","x":{"y":[1,"z",null]},"https://ns/acr":"m","https://ns/amr":["mfa"],"https://ns/auth_time":5}`,
		`{"aud":"a","scope":["x"],"nonce":null,"events":{"e":{}},"email":3,"name":"n\u00e9","a":"\ud83d\ude00"}`,
		`{"a":1,"a":2}`, `{"iss":"a","iss":"b"}`, `{"exp":-0}`, `{"sub":"x"} `,
	} {
		f.Add(s)
	}
	ns := claimNames{acr: "https://ns/acr", amr: "https://ns/amr", authTime: "https://ns/auth_time"}
	f.Fuzz(func(t *testing.T, s string) {
		var c registeredClaims
		var arena [16]string
		err := decodeClaims(s, &c, arena[:0], &ns)
		m, merr := decodeJSONObject(s)
		if err != nil {
			grammar := false
			for _, e := range []error{errJSONSyntax, errJSONDuplicate, errJSONDepth, errJSONUTF8, errJSONNotObject} {
				grammar = grammar || errors.Is(err, e)
			}
			if merr == nil && grammar {
				t.Fatalf("%q: decodeClaims refuses (%v), decodeJSONObject accepts", s, err)
			}
			return
		}
		if merr != nil {
			t.Fatalf("%q: decodeClaims accepts, decodeJSONObject refuses (%v)", s, merr)
		}
		for k, v := range map[string]string{"iss": c.iss, "sub": c.sub, "azp": c.azp, "org_id": c.orgID, "https://ns/acr": c.nsACR,
			"acr": c.acr, "sid": c.sid, "jti": c.jti, "nonce": c.nonce, "client_id": c.clientID} {
			if mv, _ := m[k].(string); mv != v {
				t.Fatalf("%q: %s = %q, the map has %#v", s, k, v, m[k])
			}
		}
		for k, d := range map[string]numericDate{"exp": c.exp, "iat": c.iat, "nbf": c.nbf, "auth_time": c.authTime, "https://ns/auth_time": c.nsAuthTime} {
			if f, ok := m[k].(float64); ok != d.ok || (ok && d.t.Unix() != int64(f)) {
				t.Fatalf("%q: %s = %v, the map has %#v", s, k, d, m[k])
			}
		}
		for k, got := range map[string][]string{"aud": c.aud, "amr": c.amr, "permissions": c.permissions, "https://ns/amr": c.nsAMR} {
			var want []string
			switch v := m[k].(type) {
			case string:
				want = []string{v}
			case []any:
				for _, e := range v {
					es, _ := e.(string)
					want = append(want, es)
				}
			}
			if k == "aud" || m[k] != nil {
				if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
					t.Fatalf("%q: %s = %q, the map has %#v", s, k, got, m[k])
				}
			}
		}
	})
}

// TestTokenSizes verifies access, ID and logout tokens of every length
// around the scratch buffers' limits (the small and the large stack buffer,
// and the heap beyond), cached and not: each size gives the same token.
func TestTokenSizes(t *testing.T) {
	ctx := context.Background()
	api := newAPIFixture(t, nil)
	cached := newAPIFixture(t, func(c *VerifierConfig) { c.CacheSize = 8 })
	cached.v.keys, cached.keys = api.v.keys, api.keys
	cached.v.jws.keys = api.v.keys
	id := newIDFixture(t)
	check := idTokenCheck{Nonce: testNonce, MaxAge: 5 * time.Minute, CheckMaxAge: true}
	// pad returns a token of about n bytes (the claim's length moves the
	// token's by 4/3 of a byte).
	sized := func(n int, sign func(pad string) string) []string {
		base := len(sign(""))
		var toks []string
		for p := max(0, (n-base)*3/4-4); p < (n-base)*3/4+4; p++ {
			toks = append(toks, sign(strings.Repeat("x", p)))
		}
		return toks
	}
	for _, n := range []int{jwtSmallTokenBytes, jwtStackBytes * 4 / 7, jwtStackBytes, 10 << 10} {
		var lens []int
		for _, raw := range sized(n, func(pad string) string {
			return api.sign(t, func(_, c map[string]any) { c["pad"] = pad })
		}) {
			lens = append(lens, len(raw))
			for _, v := range []*Verifier{api.v, cached.v, cached.v} {
				tok, err := v.Verify(ctx, raw)
				if err != nil || tok.Subject != "auth0|alice" || tok.Claims()["pad"] == nil {
					t.Fatalf("access token of %d bytes: %v", len(raw), err)
				}
			}
		}
		if slices.Min(lens) > n-2 || slices.Max(lens) <= n {
			t.Fatalf("access tokens of %v bytes: not around %d", lens, n)
		}
		for _, raw := range sized(n, func(pad string) string {
			return id.sign(t, func(_, c map[string]any) { c["pad"] = pad })
		}) {
			if tok, err := id.v.verify(ctx, raw, check); err != nil || tok.Subject != "auth0|alice" {
				t.Fatalf("ID token of %d bytes: %v", len(raw), err)
			}
		}
		for _, raw := range sized(n, func(pad string) string {
			return id.signLogout(t, func(_, c map[string]any) { c["pad"] = pad })
		}) {
			if _, err := id.v.verifyLogout(ctx, raw); err != nil {
				t.Fatalf("logout token of %d bytes: %v", len(raw), err)
			}
		}
	}
}

// TestKnownHeaders checks the headers a jwsVerifier keeps: only once a
// token with the header verified, only for the exact spelling (a header of
// the same length, or one spelled as a prefix or an extension of a known
// one, is decoded and checked as any other), never in place of the
// signature, and across more headers than it keeps.
func TestKnownHeaders(t *testing.T) {
	ctx := context.Background()
	f := newAPIFixture(t, nil)
	k0, k1 := f.keys[0], f.keys[1]
	f.srv.setKeys(k0, k1)
	header := func(raw string) string { return raw[:strings.IndexByte(raw, '.')] }
	sign := func(h map[string]any, key *testKey) string { return signJWT(t, h, f.claims(), key.priv, nil) }
	known := func(raw string) bool { kh, _ := f.v.jws.knownHeader(header(raw)); return kh != nil }

	good := sign(map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": k0.kid}, k0)
	// The same header, signed by another key: refused, and not remembered.
	forged := sign(map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": k0.kid}, k1)
	if _, err := f.v.Verify(ctx, forged); !errors.Is(err, ErrTokenSignature) || known(forged) {
		t.Fatalf("forged token: %v, remembered %v", err, known(forged))
	}
	if _, err := f.v.Verify(ctx, good); err != nil || !known(good) {
		t.Fatalf("good token: %v, remembered %v", err, known(good))
	}
	// Known now: a bad signature is still refused.
	if _, err := f.v.Verify(ctx, forged); !errors.Is(err, ErrTokenSignature) {
		t.Fatalf("forged token with a known header: %v", err)
	}
	// A typ of the same length (so a header of the same length) is checked.
	badTyp := sign(map[string]any{"alg": "RS256", "typ": "at+jwx", "kid": k0.kid}, k0)
	if len(header(badTyp)) != len(header(good)) {
		t.Fatal("the test needs headers of the same length")
	}
	if _, err := f.v.Verify(ctx, badTyp); !errors.Is(err, ErrTokenType) {
		t.Fatalf("typ at+jwx after a known at+jwt: %v", err)
	}
	// The known spelling with a byte more or less is not the known header.
	for _, raw := range []string{header(good)[:len(header(good))-1] + good[len(header(good)):], header(good) + "A" + good[len(header(good)):]} {
		if _, err := f.v.Verify(ctx, raw); !errors.Is(err, ErrTokenMalformed) {
			t.Fatalf("%q: %v", header(raw), err)
		}
	}
	// More distinct headers than are kept, in turn: each verifies with its
	// own kid and alg.
	var toks []string
	for _, key := range []*testKey{k0, k1} {
		for _, alg := range []string{"RS256", "PS256"} {
			for _, typ := range []string{"at+jwt", "JWT", ""} {
				h := map[string]any{"alg": alg, "kid": key.kid}
				if typ != "" {
					h["typ"] = typ
				}
				toks = append(toks, sign(h, key))
			}
		}
	}
	for round := range 3 {
		for _, raw := range toks {
			if _, err := f.v.Verify(ctx, raw); err != nil {
				t.Fatalf("round %d, header %q: %v", round, header(raw), err)
			}
		}
	}
	// Concurrently (for the race detector).
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for k := range 20 {
				if _, err := f.v.Verify(ctx, toks[(g+k)%len(toks)]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

// TestKnownHeaderKeys checks that a known header's keys are those of the
// key set's current snapshot: once the JWKS no longer holds its key, a token
// with the known header is refused, and the header's entry is not kept for
// the old keys.
func TestKnownHeaderKeys(t *testing.T) {
	ctx := context.Background()
	f := newAPIFixture(t, nil)
	k0, k1 := f.keys[0], f.keys[1]
	good := signJWT(t, map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": k0.kid}, f.claims(), k0.priv, nil)
	if _, err := f.v.Verify(ctx, good); err != nil {
		t.Fatal(err)
	}
	// The JWKS rotates to k1 only; a token of k1 (unknown kid) refetches it.
	f.srv.setKeys(k1)
	next := signJWT(t, map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": k1.kid}, f.claims(), k1.priv, nil)
	if _, err := f.v.Verify(ctx, next); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	kh, _ := f.v.jws.knownHeader(good[:strings.IndexByte(good, '.')])
	if kh == nil || kh.cand.snap == f.v.keys.snap.Load() {
		t.Fatal("the known header should still hold the old snapshot's keys")
	}
	for range 2 {
		if _, err := f.v.Verify(ctx, good); !errors.Is(err, ErrTokenUnknownKey) {
			t.Fatalf("token of a key the JWKS no longer has, with a known header: %v", err)
		}
	}
	if _, err := f.v.Verify(ctx, next); err != nil {
		t.Fatalf("token of the new key, its header known: %v", err)
	}
}

// A key replaced under the same kid by a background refresh: the known
// header's keys belong to the old snapshot and are not used; a token of the
// old key is refused, one of the new key verifies, while goroutines verify
// both throughout (run with -race).
func TestKnownHeaderKeysSameKidRotated(t *testing.T) {
	ctx := context.Background()
	f := newAPIFixture(t, nil)
	k0, k1 := f.keys[0], f.keys[1]
	replaced := &testKey{kid: k0.kid, priv: k1.priv} // k1's key under k0's kid
	header := map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": k0.kid}
	oldTok := signJWT(t, header, f.claims(), k0.priv, nil)
	newTok := signJWT(t, header, f.claims(), replaced.priv, nil)
	if oldTok[:strings.IndexByte(oldTok, '.')] != newTok[:strings.IndexByte(newTok, '.')] {
		t.Fatal("the two tokens should share one header spelling")
	}
	if _, err := f.v.Verify(ctx, oldTok); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	for _, tok := range []string{oldTok, newTok} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := f.v.Verify(ctx, tok); err != nil && !errors.Is(err, ErrTokenSignature) {
					t.Errorf("during rotation: %v (want a valid token or a signature error)", err)
					return
				}
			}
		}()
	}
	for i := range 10 {
		keys, want, refused := []*testKey{replaced}, newTok, oldTok
		if i%2 == 1 {
			keys, want, refused = []*testKey{k0}, oldTok, newTok
		}
		f.srv.setKeys(keys...)
		if _, err := f.v.keys.cache.Refresh(ctx, f.v.keys.url); err != nil {
			t.Fatal(err)
		}
		if _, err := f.v.Verify(ctx, want); err != nil {
			t.Fatalf("round %d: the current key's token: %v", i, err)
		}
		if _, err := f.v.Verify(ctx, refused); !errors.Is(err, ErrTokenSignature) {
			t.Fatalf("round %d: the replaced key's token: %v, want ErrTokenSignature", i, err)
		}
	}
}
