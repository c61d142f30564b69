package stepup

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var compactNS = claimNames{acr: "https://ns/acr", amr: "https://ns/amr", authTime: "https://ns/auth_time"}

// compareWithJSON decodes s on both paths and fails when the fast path
// accepts what the general one refuses, or decodes it otherwise; and when
// decodeClaims (both in turn, on one arena, as a verification runs them)
// gives another result or error than the general path alone. It reports
// whether the fast path accepted s.
func compareWithJSON(t *testing.T, s string, ns *claimNames) bool {
	t.Helper()
	opt := cmp.AllowUnexported(registeredClaims{}, numericDate{})
	var slow, both registeredClaims
	var slowArena, bothArena [16]string
	slowErr := decodeClaimsJSON(s, &slow, slowArena[:0], ns)
	bothErr := decodeClaims(s, &both, bothArena[:0], ns)
	if (slowErr == nil) != (bothErr == nil) || (slowErr != nil && slowErr.Error() != bothErr.Error()) {
		t.Fatalf("%q: decodeClaims says %v, the general path %v", s, bothErr, slowErr)
	}
	if d := cmp.Diff(slow, both, opt); slowErr == nil && d != "" {
		t.Fatalf("%q: decodeClaims and the general path differ (-general +decodeClaims):\n%s", s, d)
	}
	var fast registeredClaims
	var fastArena [16]string
	a := fastArena[:0]
	if !decodeCompactClaims(s, &fast, &a, ns) {
		return false
	}
	if slowErr != nil {
		t.Fatalf("%q: the fast path accepts it, the general one refuses it: %v", s, slowErr)
	}
	if d := cmp.Diff(slow, fast, opt); d != "" {
		t.Fatalf("%q: the two paths differ (-general +fast):\n%s", s, d)
	}
	return true
}

// TestCompactClaimsAuth0 holds the fast path to the claim sets Auth0 issues:
// each takes it and decodes as on the general path.
func TestCompactClaimsAuth0(t *testing.T) {
	for _, s := range []string{
		// An access token for a custom API, with RBAC and an organization.
		`{"iss":"https://fabrikam.eu.auth0.com/","sub":"auth0|6571f0f5c2a1b9e0d3c4a7b2","aud":["https://api.fabrikam.example/","https://fabrikam.eu.auth0.com/userinfo"],"iat":1764680000,"exp":1764766400,"scope":"openid profile email read:employees read:salaries","azp":"mK3vQbT9nX2pL7sR4wY8zA1cE5fH6jD0","permissions":["read:employees","read:salaries"],"org_id":"org_7Yx2Lp9QwErTy3Ui"}`,
		// An access token whose Action copied the authentication claims under
		// a namespace; client credentials (no sub user, gty).
		`{"https://ns/acr":"http://schemas.openid.net/pape/policies/2007/06/multi-factor","https://ns/amr":["mfa","otp"],"https://ns/auth_time":1764679990,"iss":"https://t/","sub":"auth0|x","aud":"https://api/","iat":1764680000,"exp":1764766400,"scope":"read:x","gty":"client-credentials","azp":"c"}`,
		// An ID token: profile claims, email_verified, sid, nonce, acr, amr.
		`{"nickname":"jane","name":"jane@fabrikam.example","picture":"https://s.gravatar.com/avatar/x.png","updated_at":"2026-12-02T10:00:00.000Z","email":"jane@fabrikam.example","email_verified":true,"iss":"https://t/","aud":"client","sub":"auth0|x","iat":1764680000,"exp":1764716000,"sid":"sid-1","auth_time":1764679990,"acr":"http://schemas.openid.net/pape/policies/2007/06/multi-factor","amr":["mfa"],"nonce":"n-0S6_WzA2Mj"}`,
		`{}`, `{"aud":[]}`, `{"amr":[],"scope":""}`, `{"scope":["a","b"]}`, `{"x":false,"y":0,"z":[],"w":["a"]}`,
		`{"exp":0}`, `{"exp":100000000000}`, `{"a":"","":"b"}`, `{"x":100000000001,"y":999999999999999}`,
	} {
		if !compareWithJSON(t, s, &compactNS) {
			t.Errorf("%q: the fast path declines it", s)
		}
	}
}

// TestCompactClaimsDeclines lists what the fast path leaves to the general
// decoder: each is declined, whether the general path accepts it or not.
func TestCompactClaimsDeclines(t *testing.T) {
	for _, s := range []string{
		``, `{`, `}`, `[]`, `{"a":1}x`, ` {"a":1}`, `{"a":1} `, `{"a": 1}`, `{ "a":1}`, `{"a":1,}`, `{"a"}`, `{"a":}`,
		`{"a":"\u0041"}`, `{"a":"\n"}`, `{"a":"é"}`, `{"é":1}`, `{"a\"":1}`, `{"a":"b}`, `{"a":"b`,
		`{"a":null}`, `{"a":{}}`, `{"a":[1]}`, `{"a":["b",1]}`, `{"a":["b",]}`, `{"a":["b"}`, `{"a":[`,
		`{"a":-1}`, `{"a":1.5}`, `{"a":1e3}`, `{"a":01}`, `{"a":1234567890123456}`, `{"a":tru}`, `{"a":truex}`,
		`{"a":1}}`, `{"a":"b"}}`, `{"a":[]}}`, `{"a":true}}`, `{"a":1},`,
		`{"a":1,"a":2}`, `{"iss":"a","iss":"b"}`, `{"https://ns/acr":"a","https://ns/acr":"b"}`,
		`{"iss":1}`, `{"iss":null}`, `{"aud":1}`, `{"amr":"mfa"}`, `{"permissions":"p"}`, `{"exp":"1"}`, `{"exp":true}`,
		`{"exp":100000000001}`, `{"email":3}`, `{"email":true}`, `{"events":{}}`, `{"events":"x"}`, `{"nonce":null}`,
		`{"a1":1,"a2":1,"a3":1,"a4":1,"a5":1,"a6":1,"a7":1,"a8":1,"a9":1}`,
	} {
		if compareWithJSON(t, s, &compactNS) {
			t.Errorf("%q: the fast path takes it", s)
		}
	}
}

// TestCompactClaimsNamespaceOff: without a namespace the namespaced names
// are claims like any other.
func TestCompactClaimsNamespaceOff(t *testing.T) {
	for _, s := range []string{
		`{"https://ns/acr":"x","https://ns/amr":["y"],"https://ns/auth_time":5}`,
		`{"":"x","https://ns/amr":["y"]}`, // "" is no namespace's name
	} {
		for _, ns := range []*claimNames{nil, {}} {
			if !compareWithJSON(t, s, ns) {
				t.Fatalf("%q: the fast path declines it", s)
			}
			var c registeredClaims
			var arena [4]string
			if err := decodeClaims(s, &c, arena[:0], ns); err != nil || c.hasNSACR || c.hasNSAMR || c.hasNSA {
				t.Fatalf("%q without a namespace: %v, %+v", s, err, c)
			}
		}
	}
}

// TestClaimSlots: every registered claim has its own slot, found by its name
// and by no other (the perfect hash).
func TestClaimSlots(t *testing.T) {
	for slot, name := range claimSlotNames {
		if got := claimSlot(name); got != slot {
			t.Errorf("claimSlot(%q) = %d, want %d", name, got, slot)
		}
		for _, other := range []string{name + "x", strings.ToUpper(name), name[:len(name)-1], "x" + name[1:]} {
			if got := claimSlot(other); got >= 0 && claimSlotNames[got] != other {
				t.Errorf("claimSlot(%q) = %d (%q)", other, got, claimSlotNames[got])
			}
		}
	}
	for _, k := range []string{"", "i", "is", "issx"} {
		if got := claimSlot(k); got != -1 {
			t.Errorf("claimSlot(%q) = %d, want -1", k, got)
		}
	}
}

// FuzzCompactClaims: whatever the fast path accepts, the general decoder
// accepts with the same result (with the namespace set and without).
func FuzzCompactClaims(f *testing.F) {
	for _, s := range []string{
		`{"iss":"https://t/","sub":"auth0|x","aud":["a","b"],"iat":1764680000,"exp":1764766400,"scope":"openid  read:x","azp":"c","permissions":["p"],"org_id":"o"}`,
		`{"https://ns/acr":"m","https://ns/amr":["mfa"],"https://ns/auth_time":5,"email_verified":true,"x":false,"y":["a"],"z":0}`,
		`{"aud":"a","nonce":"n","sid":"s","jti":"j","client_id":"c","acr":"a","amr":[],"name":"n","email":"e","nbf":1,"auth_time":2}`,
		`{"a":1,"a":2}`, `{"exp":100000000001}`, `{"a":"\u0041"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		compareWithJSON(t, s, &compactNS)
		compareWithJSON(t, s, nil)
		compareWithJSON(t, s, &claimNames{})
	})
}

// TestCompactClaimsRandom builds compact claim sets from the names the
// decoders know and values of every kind (right, wrong, out of range, in
// the fast path's grammar or not), and compares the two paths on each.
func TestCompactClaimsRandom(t *testing.T) {
	names := append(claimSlotNames[:], compactNS.acr, compactNS.amr, compactNS.authTime, "x", "email_verified", "", "https://other/claim")
	values := []string{
		`"a"`, `""`, `"https://t/"`, `"openid read:x  write:y"`, `"\u00e9"`, `"é"`, `"a\"b"`,
		`[]`, `["a"]`, `["a","b","c"]`, `["a",1]`, `[`, `["a"`,
		`0`, `1`, `1764680000`, `100000000000`, `100000000001`, `999999999999999`, `1234567890123456`, `-1`, `1.5`, `1e9`, `01`,
		`true`, `false`, `null`, `{}`, `{"a":1}`, `tru`,
	}
	r := rand.New(rand.NewPCG(7, 8))
	taken := 0
	for range 50000 {
		var b strings.Builder
		b.WriteByte('{')
		for m := range r.IntN(7) {
			if m > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"` + names[r.IntN(len(names))] + `":`)
			b.WriteString(values[r.IntN(len(values))])
		}
		b.WriteByte('}')
		ns := &compactNS
		switch r.IntN(6) {
		case 0:
			ns = nil
		case 1:
			ns = &claimNames{} // what a Verifier without a namespace passes
		}
		if compareWithJSON(t, b.String(), ns) {
			taken++
		}
	}
	if taken < 5000 {
		t.Fatalf("the fast path took only %d of the claim sets", taken)
	}
}

// BenchmarkDecodeClaims decodes an Auth0 access token's claim set (the bench
// module's) with decodeClaims, which takes the fast path, and with the
// general decoder alone.
func BenchmarkDecodeClaims(b *testing.B) {
	const payload = `{"iss":"https://fabrikam.eu.auth0.com/","sub":"auth0|6571f0f5c2a1b9e0d3c4a7b2","aud":["https://api.fabrikam.example/","https://fabrikam.eu.auth0.com/userinfo"],"iat":1764680000,"exp":1764766400,"scope":"openid profile email read:employees read:salaries","azp":"mK3vQbT9nX2pL7sR4wY8zA1cE5fH6jD0","permissions":["read:employees","read:salaries"],"org_id":"org_7Yx2Lp9QwErTy3Ui"}`
	b.Run("decodeClaims", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c registeredClaims
			var arena [16]string
			if err := decodeClaims(payload, &c, arena[:0], &compactNS); err != nil || c.orgID == "" {
				b.Fatal(err)
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c registeredClaims
			var arena [16]string
			if err := decodeClaimsJSON(payload, &c, arena[:0], &compactNS); err != nil || c.orgID == "" {
				b.Fatal(err)
			}
		}
	})
}

// TestClaimProblems: every claimProblem gives the TokenError the checks
// gave before there were problems (kind, claim and detail, listed here),
// which matches ErrInvalidToken.
func TestClaimProblems(t *testing.T) {
	want := map[claimProblem]TokenError{
		problemIssuer:         {Kind: ErrTokenIssuer, Claim: "iss", Detail: "issuer missing or not the tenant's"},
		problemAudienceAPI:    {Kind: ErrTokenAudience, Claim: "aud", Detail: "audience missing or does not contain this API"},
		problemAudienceClient: {Kind: ErrTokenAudience, Claim: "aud", Detail: "audience missing or does not contain the client id"},
		problemExpMissing:     {Kind: ErrTokenExpired, Claim: "exp", Detail: "exp missing"},
		problemExpired:        {Kind: ErrTokenExpired, Claim: "exp", Detail: "token expired"},
		problemIatMissing:     {Kind: ErrTokenIssuedAt, Claim: "iat", Detail: "iat missing"},
		problemIatFuture:      {Kind: ErrTokenIssuedAt, Claim: "iat", Detail: "issued in the future"},
		problemNotYetValid:    {Kind: ErrTokenNotYetValid, Claim: "nbf", Detail: "not valid yet"},
		problemSubject:        {Kind: ErrTokenSubject, Claim: "sub", Detail: "sub missing or empty"},
		problemAuthTimeFuture: {Kind: ErrTokenAuthTime, Claim: "auth_time", Detail: "auth_time in the future"},
	}
	if len(want) != int(numClaimProblems)-1 {
		t.Fatalf("the test lists %d problems, there are %d", len(want), numClaimProblems-1)
	}
	for p := noClaimProblem + 1; p < numClaimProblems; p++ {
		err := p.err()
		var te *TokenError
		if !errors.As(err, &te) || !errors.Is(err, ErrInvalidToken) || !errors.Is(err, want[p].Kind) ||
			te.Claim != want[p].Claim || te.Detail != want[p].Detail {
			t.Errorf("claimProblem %d: %#v, want %#v", p, err, want[p])
		}
	}
	// Asked for no problem, err still fails closed.
	if err := noClaimProblem.err(); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("noClaimProblem.err() = %v", err)
	}
}
