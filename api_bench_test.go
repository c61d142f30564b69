package stepup

import (
	"context"
	"testing"
)

// BenchmarkAccessTokenVerify compares, in one run, our access-token
// verification (uncached and cached) with the floor (floorVerify: split,
// base64-decode the signature, SHA-256, rsa.VerifyPKCS1v15).
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
			if err := floorVerify(pub, raw); err != nil {
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
