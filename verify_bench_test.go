package stepup

import (
	"context"
	"slices"
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

// BenchmarkIDTokenInterleaved alternates, op by op, our verification and
// jws.Verify of the same token, and reports each one's median time and the
// ratio of the medians: on a shared machine, load falls on both alike.
func BenchmarkIDTokenInterleaved(b *testing.B) {
	f := newIDFixture(b)
	raw := f.sign(b, nil)
	ctx := context.Background()
	check := idTokenCheck{Nonce: testNonce, MaxAge: 5 * time.Minute, CheckMaxAge: true}
	key := &f.keys[0].priv.PublicKey
	buf := []byte(raw)
	var ours, bare []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := jws.Verify(buf, jws.WithKey(jwa.RS256, key)); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := f.v.verify(ctx, raw, check); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		bare = append(bare, t1.Sub(t0))
		ours = append(ours, t2.Sub(t1))
	}
	slices.Sort(ours)
	slices.Sort(bare)
	mo, mb := float64(ours[len(ours)/2]), float64(bare[len(bare)/2])
	b.ReportMetric(mo, "ours-ns")
	b.ReportMetric(mb, "jws.Verify-ns")
	b.ReportMetric(mo/mb, "ours/jws.Verify")
}
