package stepup

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// floorVerify is the least any verifier of an RS256 token must do, named
// exactly: split, base64-decode the signature, SHA-256 the signing input,
// rsa.VerifyPKCS1v15. The bench module has the same floor.
func floorVerify(pub *rsa.PublicKey, raw string) error {
	j := strings.LastIndexByte(raw, '.')
	if j < 0 || strings.IndexByte(raw, '.') == j {
		return errors.New("not a JWS")
	}
	sig, err := base64.RawURLEncoding.DecodeString(raw[j+1:])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(raw[:j]))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
}

// BenchmarkIDTokenVerify measures our complete ID-token verification (the
// callback's: nonce and max_age checked, the Claims map built) beside the
// floor and jwx's bare signature verification of the same token.
func BenchmarkIDTokenVerify(b *testing.B) {
	f := newIDFixture(b)
	raw := f.sign(b, nil)
	ctx := context.Background()
	check := idTokenCheck{Nonce: testNonce, MaxAge: 5 * time.Minute, CheckMaxAge: true}
	if _, err := f.v.verify(ctx, raw, check); err != nil {
		b.Fatal(err)
	}
	pub := &f.keys[0].priv.PublicKey
	b.Run("floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := floorVerify(pub, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.v.verify(ctx, raw, check); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jws.Verify", func(b *testing.B) {
		b.ReportAllocs()
		buf := []byte(raw)
		for b.Loop() {
			if _, err := jws.Verify(buf, jws.WithKey(jwa.RS256, pub)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIDTokenInterleaved alternates, op by op and in a rotating order,
// the floor, the bare rsa.VerifyPKCS1v15 on a precomputed hash, our ID-token
// verification and jwx's jws.Verify of the same token, and reports each
// one's median time and its ratio to the floor's median: on a shared
// machine, load falls on all alike.
func BenchmarkIDTokenInterleaved(b *testing.B) {
	f := newIDFixture(b)
	raw := f.sign(b, nil)
	ctx := context.Background()
	check := idTokenCheck{Nonce: testNonce, MaxAge: 5 * time.Minute, CheckMaxAge: true}
	pub := &f.keys[0].priv.PublicKey
	buf := []byte(raw)
	j := strings.LastIndexByte(raw, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(raw[j+1:])
	sum := sha256.Sum256([]byte(raw[:j]))
	contenders := []struct {
		name string
		fn   func() error
	}{
		{"floor", func() error { return floorVerify(pub, raw) }},
		{"bare-rsa", func() error { return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) }},
		{"ours", func() error { _, err := f.v.verify(ctx, raw, check); return err }},
		{"jws.Verify", func() error { _, err := jws.Verify(buf, jws.WithKey(jwa.RS256, pub)); return err }},
	}
	times := make([][]time.Duration, len(contenders))
	round := 0
	for b.Loop() {
		round++
		for k := range contenders {
			i := (k + round) % len(contenders)
			t0 := time.Now()
			if err := contenders[i].fn(); err != nil {
				b.Fatalf("%s: %v", contenders[i].name, err)
			}
			times[i] = append(times[i], time.Since(t0))
		}
	}
	med := func(d []time.Duration) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[len(s)/2])
	}
	fl := med(times[0])
	for i, c := range contenders {
		m := med(times[i])
		b.ReportMetric(m, c.name+"-ns")
		if i > 0 {
			b.ReportMetric(m/fl, c.name+"/floor")
		}
	}
}
