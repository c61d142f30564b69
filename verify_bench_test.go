package stepup

import (
	"context"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// BenchmarkIDTokenVerify/ours and /jws.Verify measure our complete ID-token
// verification against jwx's bare signature verification of the same token
// with the same key, in one run (target: ours within 1.2x).
func BenchmarkIDTokenVerify(b *testing.B) {
	f := newIDFixture(b)
	raw := f.sign(b, nil)
	ctx := context.Background()
	check := idTokenCheck{Nonce: testNonce, MaxAge: 5 * time.Minute, CheckMaxAge: true}
	if _, err := f.v.verify(ctx, raw, check); err != nil {
		b.Fatal(err)
	}
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
		key := &f.keys[0].priv.PublicKey
		buf := []byte(raw)
		for b.Loop() {
			if _, err := jws.Verify(buf, jws.WithKey(jwa.RS256, key)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
