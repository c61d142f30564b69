package stepup

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// BenchmarkAccessTokenVerify compares, in one run, our access-token
// verification (uncached and cached) with the floor: base64 decoding,
// SHA-256 and crypto/rsa verification of the same token.
func BenchmarkAccessTokenVerify(b *testing.B) {
	f := newAPIFixture(b, func(c *VerifierConfig) { c.CacheSize = 1024 })
	raw := f.sign(b, nil)
	ctx := context.Background()
	uncached := newAPIFixture(b, nil)
	uncached.v.keys = f.v.keys
	for _, v := range []*Verifier{f.v, uncached.v} {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("floor", func(b *testing.B) {
		b.ReportAllocs()
		pub := &f.keys[0].priv.PublicKey
		for b.Loop() {
			i := strings.LastIndexByte(raw, '.')
			j := strings.IndexByte(raw, '.')
			if _, err := base64.RawURLEncoding.DecodeString(raw[:j]); err != nil {
				b.Fatal(err)
			}
			if _, err := base64.RawURLEncoding.DecodeString(raw[j+1 : i]); err != nil {
				b.Fatal(err)
			}
			sig, err := base64.RawURLEncoding.DecodeString(raw[i+1:])
			if err != nil {
				b.Fatal(err)
			}
			sum := sha256.Sum256([]byte(raw[:i]))
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := uncached.v.Verify(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.v.Verify(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
