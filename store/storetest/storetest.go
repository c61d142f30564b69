// Package storetest is the conformance suite for implementations of
// [store.Store]: every Store in this module passes it, and so should yours.
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s := mystore.New(...) // empty, isolated from every other store
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Run checks each method's contract as written in package store: values,
// copies, keys, TTLs, one-time Take and single-winner SetNX under racing
// goroutines, GetEx (the value kept, the TTL replaced, never a record
// created or brought back), indexes (members that expire one by one, re-adds
// that set a new TTL, no member lost by racing IndexAdd calls, Delete),
// binary and 1 MiB values, and contexts that are already done.
//
// Expiry is tested in one of two ways. A store that reads an injected clock
// is given [WithClock]: Run then moves that clock and the test is exact and
// instant. A store whose expiry runs on a server's clock (Redis) is tested
// with short real TTLs: Run polls until the record is gone, and fails if it
// disappeared early or lingers past a tolerance ([WithExpiryTolerance]).
//
// Run does not run its subtests in parallel (they share the clock); the
// concurrency tests start their own goroutines.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepupauth/stepup/store"
)

// An Option configures Run.
type Option func(*config)

type config struct {
	advance   func(time.Duration)
	tolerance time.Duration
	racers    int
}

// WithClock tells Run that the stores newStore returns measure TTLs with a
// clock that advance moves forward by d (such as [Clock.Advance]). All those
// stores may share that clock. Without WithClock, Run waits for real TTLs.
func WithClock(advance func(d time.Duration)) Option {
	return func(c *config) { c.advance = advance }
}

// WithExpiryTolerance sets how long after its TTL a record may still be
// seen when Run waits for real TTLs (no WithClock), to allow for a loaded
// machine or a remote server. Default: 2 seconds.
func WithExpiryTolerance(d time.Duration) Option {
	return func(c *config) { c.tolerance = d }
}

// Clock is a fake clock for stores that take a Now function; it is safe for
// concurrent use. Pass c.Now to the store and WithClock(c.Advance) to Run.
type Clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

// NewClock returns a Clock that reads start until it is advanced.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Racers is how many goroutines race in the Take and SetNX tests.
const Racers = 64

// Run runs the conformance suite. newStore is called once or more per
// subtest and must return an empty Store, isolated from every other store it
// returned (for a shared server: a key prefix of its own), cleaned up by
// t.Cleanup when needed.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, opts ...Option) {
	c := &config{tolerance: 2 * time.Second, racers: Racers}
	for _, o := range opts {
		o(c)
	}
	s := &suite{config: c, newStore: newStore}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"GetMissing", s.getMissing},
		{"SetGet", s.setGet},
		{"SetReplaces", s.setReplaces},
		{"EmptyValue", s.emptyValue},
		{"BinaryValue", s.binaryValue},
		{"LargeValue", s.largeValue},
		{"ValuesAreCopied", s.valuesAreCopied},
		{"Keys", s.keys},
		{"KeyPrefixesAreDistinct", s.keyPrefixes},
		{"StoresAreIsolated", s.isolation},
		{"InvalidArguments", s.invalidArguments},
		{"SetNX", s.setNX},
		{"Take", s.take},
		{"Delete", s.delete},
		{"Expiry", s.expiry},
		{"SetResetsTTL", s.setResetsTTL},
		{"GetDoesNotExtendTTL", s.getDoesNotExtendTTL},
		{"SetNXKeepsTTL", s.setNXKeepsTTL},
		{"TinyAndLongTTL", s.tinyAndLongTTL},
		{"TakeRace", s.takeRace},
		{"SetNXRace", s.setNXRace},
		{"ConcurrentUse", s.concurrentUse},
		{"GetEx", s.getEx},
		{"GetExTTL", s.getExTTL},
		{"GetExRace", s.getExRace},
		{"Index", s.index},
		{"IndexInvalidArguments", s.indexInvalidArguments},
		{"IndexMemberExpiry", s.indexMemberExpiry},
		{"IndexReAddSetsTTL", s.indexReAddSetsTTL},
		{"IndexExpiresWithLastMember", s.indexExpiresWithLastMember},
		{"IndexAddRace", s.indexAddRace},
		{"CanceledContext", s.canceledContext},
		{"ExpiredContext", s.expiredContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	*config
	newStore func(t *testing.T) store.Store
}

func (s *suite) store(t *testing.T) store.Store {
	t.Helper()
	st := s.newStore(t)
	if st == nil {
		t.Fatal("newStore returned nil")
	}
	return st
}

func bg() context.Context { return context.Background() }

// The helpers below fail the test with a message that names the call.

func mustSet(t *testing.T, st store.Store, key string, v []byte, ttl time.Duration) {
	t.Helper()
	if err := st.Set(bg(), key, v, ttl); err != nil {
		t.Fatalf("Set(%q, %d bytes, %v): %v", key, len(v), ttl, err)
	}
}

func wantValue(t *testing.T, st store.Store, key string, want []byte) {
	t.Helper()
	got, err := st.Get(bg(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %s", key, err, show(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %s, want %s", key, show(got), show(want))
	}
}

func wantNotFound(t *testing.T, st store.Store, key string) {
	t.Helper()
	got, err := st.Get(bg(), key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %s, %v; want ErrNotFound", key, show(got), err)
	}
}

// show prints a value briefly: large values as their length and a prefix.
func show(b []byte) string {
	if len(b) > 32 {
		return fmt.Sprintf("%d bytes %q...", len(b), b[:32])
	}
	return fmt.Sprintf("%q", b)
}

func (s *suite) getMissing(t *testing.T) {
	st := s.store(t)
	wantNotFound(t, st, "missing")
	if v, err := st.Take(bg(), "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Take(missing) = %s, %v; want ErrNotFound", show(v), err)
	}
	if errors.Is(store.ErrNotFound, store.ErrUnavailable) || errors.Is(store.ErrUnavailable, store.ErrNotFound) {
		t.Fatal("ErrNotFound and ErrUnavailable must be distinct")
	}
}

func (s *suite) setGet(t *testing.T) {
	st := s.store(t)
	mustSet(t, st, "k", []byte("value"), time.Hour)
	wantValue(t, st, "k", []byte("value"))
	// Get does not consume.
	wantValue(t, st, "k", []byte("value"))
}

func (s *suite) setReplaces(t *testing.T) {
	st := s.store(t)
	mustSet(t, st, "k", []byte("first, and longer"), time.Hour)
	mustSet(t, st, "k", []byte("second"), time.Hour)
	wantValue(t, st, "k", []byte("second"))
}

func (s *suite) emptyValue(t *testing.T) {
	st := s.store(t)
	for _, v := range [][]byte{nil, {}} {
		mustSet(t, st, "empty", v, time.Hour)
		wantValue(t, st, "empty", nil)
	}
	if ok, err := st.SetNX(bg(), "empty2", nil, time.Hour); !ok || err != nil {
		t.Fatalf("SetNX(empty2, nil) = %v, %v; want true, nil", ok, err)
	}
	got, err := st.Take(bg(), "empty2")
	if err != nil || len(got) != 0 {
		t.Fatalf("Take(empty2) = %s, %v; want empty, nil", show(got), err)
	}
}

func (s *suite) binaryValue(t *testing.T) {
	st := s.store(t)
	all := make([]byte, 0, 512)
	for i := range 256 {
		all = append(all, byte(i))
	}
	all = append(all, []byte("\x00\r\n$-1\r\n\xff\xfe")...) // NUL, RESP look-alikes, invalid UTF-8
	mustSet(t, st, "bin", all, time.Hour)
	wantValue(t, st, "bin", all)
	got, err := st.Take(bg(), "bin")
	if err != nil || !bytes.Equal(got, all) {
		t.Fatalf("Take(bin) = %s, %v; want %s", show(got), err, show(all))
	}
}

func (s *suite) largeValue(t *testing.T) {
	st := s.store(t)
	big := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	mustSet(t, st, "big", big, time.Hour)
	wantValue(t, st, "big", big)
	if ok, err := st.SetNX(bg(), "big2", big, time.Hour); !ok || err != nil {
		t.Fatalf("SetNX(big2, 1 MiB) = %v, %v; want true, nil", ok, err)
	}
	got, err := st.Take(bg(), "big2")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Take(big2) = %s, %v; want the 1 MiB value", show(got), err)
	}
}

func (s *suite) valuesAreCopied(t *testing.T) {
	st := s.store(t)
	v := []byte("original")
	mustSet(t, st, "k", v, time.Hour)
	copy(v, "MUTATED!")
	wantValue(t, st, "k", []byte("original"))

	got, err := st.Get(bg(), "k")
	if err != nil {
		t.Fatal(err)
	}
	copy(got, "MUTATED!")
	wantValue(t, st, "k", []byte("original"))

	v2 := []byte("nx-value")
	if ok, err := st.SetNX(bg(), "k2", v2, time.Hour); !ok || err != nil {
		t.Fatalf("SetNX(k2) = %v, %v; want true, nil", ok, err)
	}
	copy(v2, "MUTATED!")
	wantValue(t, st, "k2", []byte("nx-value"))
}

// keys stepup and its users write: printable ASCII without spaces, with the
// separators and Redis hash-tag braces they use.
var sampleKeys = []string{
	"a",
	"tx:3q2-7wEvAbc_xyz0123456789ABCDEFGHIJKLMNOPQRSTU",
	"sess:{9f86d081884c7d659a2feaa0c55ad015}",
	"lease:{9f86d081884c7d659a2feaa0c55ad015}:refresh",
	"{tag}",
	"{}",
	"}{",
	"x{y}z{w}",
	"!\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`|~",
	strings.Repeat("k", 200),
}

func (s *suite) keys(t *testing.T) {
	st := s.store(t)
	for i, k := range sampleKeys {
		mustSet(t, st, k, []byte(fmt.Sprint("value-", i)), time.Hour)
	}
	for i, k := range sampleKeys {
		wantValue(t, st, k, []byte(fmt.Sprint("value-", i)))
	}
	for i, k := range sampleKeys {
		got, err := st.Take(bg(), k)
		if err != nil || string(got) != fmt.Sprint("value-", i) {
			t.Fatalf("Take(%q) = %s, %v; want %q", k, show(got), err, fmt.Sprint("value-", i))
		}
	}
}

func (s *suite) keyPrefixes(t *testing.T) {
	st := s.store(t)
	keys := []string{"k", "k:", "k:1", "K", "kk", "k1"}
	for _, k := range keys {
		mustSet(t, st, k, []byte("v"+k), time.Hour)
	}
	if err := st.Delete(bg(), "k"); err != nil {
		t.Fatalf("Delete(k): %v", err)
	}
	wantNotFound(t, st, "k")
	for _, k := range keys[1:] {
		wantValue(t, st, k, []byte("v"+k))
	}
	if _, err := st.Take(bg(), "k:"); err != nil {
		t.Fatalf("Take(k:): %v", err)
	}
	for _, k := range keys[2:] {
		wantValue(t, st, k, []byte("v"+k))
	}
}

func (s *suite) isolation(t *testing.T) {
	a, b := s.store(t), s.store(t)
	mustSet(t, a, "shared-name", []byte("in a"), time.Hour)
	wantNotFound(t, b, "shared-name")
	if ok, err := b.SetNX(bg(), "shared-name", []byte("in b"), time.Hour); !ok || err != nil {
		t.Fatalf("SetNX in the second store = %v, %v; want true, nil (stores must be isolated)", ok, err)
	}
	wantValue(t, a, "shared-name", []byte("in a"))
	if _, err := b.Take(bg(), "shared-name"); err != nil {
		t.Fatal(err)
	}
	wantValue(t, a, "shared-name", []byte("in a"))
	if err := b.Delete(bg(), "shared-name"); err != nil {
		t.Fatal(err)
	}
	wantValue(t, a, "shared-name", []byte("in a"))
}

func (s *suite) invalidArguments(t *testing.T) {
	st := s.store(t)
	ctx := bg()
	wantInvalid := func(t *testing.T, call string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", call, err)
		}
	}
	_, err := st.Get(ctx, "")
	wantInvalid(t, `Get("")`, err)
	wantInvalid(t, `Set("")`, st.Set(ctx, "", []byte("v"), time.Hour))
	ok, err := st.SetNX(ctx, "", []byte("v"), time.Hour)
	wantInvalid(t, `SetNX("")`, err)
	if ok {
		t.Errorf(`SetNX("") reported true`)
	}
	_, err = st.Take(ctx, "")
	wantInvalid(t, `Take("")`, err)
	wantInvalid(t, `Delete("")`, st.Delete(ctx, ""))

	for _, ttl := range []time.Duration{0, -time.Second} {
		wantInvalid(t, fmt.Sprintf("Set(ttl %v)", ttl), st.Set(ctx, "k", []byte("v"), ttl))
		ok, err := st.SetNX(ctx, "k", []byte("v"), ttl)
		wantInvalid(t, fmt.Sprintf("SetNX(ttl %v)", ttl), err)
		if ok {
			t.Errorf("SetNX(ttl %v) reported true", ttl)
		}
		wantNotFound(t, st, "k")
	}
	// An invalid TTL does not touch an existing record either.
	mustSet(t, st, "k", []byte("kept"), time.Hour)
	wantInvalid(t, "Set(existing, ttl 0)", st.Set(ctx, "k", []byte("lost"), 0))
	wantValue(t, st, "k", []byte("kept"))
}

func (s *suite) setNX(t *testing.T) {
	st := s.store(t)
	ok, err := st.SetNX(bg(), "lease", []byte("owner-1"), time.Hour)
	if !ok || err != nil {
		t.Fatalf("SetNX on an absent key = %v, %v; want true, nil", ok, err)
	}
	ok, err = st.SetNX(bg(), "lease", []byte("owner-2"), time.Hour)
	if ok || err != nil {
		t.Fatalf("SetNX on a present key = %v, %v; want false, nil", ok, err)
	}
	wantValue(t, st, "lease", []byte("owner-1"))
	if err := st.Delete(bg(), "lease"); err != nil {
		t.Fatal(err)
	}
	ok, err = st.SetNX(bg(), "lease", []byte("owner-3"), time.Hour)
	if !ok || err != nil {
		t.Fatalf("SetNX after Delete = %v, %v; want true, nil", ok, err)
	}
	wantValue(t, st, "lease", []byte("owner-3"))
	// Set overrides a lease (it is unconditional).
	mustSet(t, st, "lease", []byte("forced"), time.Hour)
	wantValue(t, st, "lease", []byte("forced"))
}

func (s *suite) take(t *testing.T) {
	st := s.store(t)
	mustSet(t, st, "tx", []byte("transaction"), time.Hour)
	got, err := st.Take(bg(), "tx")
	if err != nil || string(got) != "transaction" {
		t.Fatalf("Take(tx) = %s, %v; want %q", show(got), err, "transaction")
	}
	if got, err := st.Take(bg(), "tx"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Take(tx) = %s, %v; want ErrNotFound (one-time use)", show(got), err)
	}
	wantNotFound(t, st, "tx")
	if ok, err := st.SetNX(bg(), "tx", []byte("again"), time.Hour); !ok || err != nil {
		t.Fatalf("SetNX after Take = %v, %v; want true, nil", ok, err)
	}
	// The slice Take returned belongs to the caller.
	got, err = st.Take(bg(), "tx")
	if err != nil {
		t.Fatal(err)
	}
	copy(got, "XXXXX")
	mustSet(t, st, "tx", []byte("fresh"), time.Hour)
	wantValue(t, st, "tx", []byte("fresh"))
}

func (s *suite) delete(t *testing.T) {
	st := s.store(t)
	mustSet(t, st, "k", []byte("v"), time.Hour)
	if err := st.Delete(bg(), "k"); err != nil {
		t.Fatalf("Delete(k): %v", err)
	}
	wantNotFound(t, st, "k")
	if err := st.Delete(bg(), "k"); err != nil {
		t.Fatalf("Delete of a deleted key: %v, want nil", err)
	}
	if err := st.Delete(bg(), "never-set"); err != nil {
		t.Fatalf("Delete of a missing key: %v, want nil", err)
	}
}

// expire waits until the records set at start with TTL ttl have expired: by
// moving the clock, or by polling for key to disappear (real TTLs).
// Before that, it checks that key was not reported missing early.
func (s *suite) expire(t *testing.T, st store.Store, key string, start time.Time, ttl time.Duration) {
	t.Helper()
	s.waitGone(t, fmt.Sprintf("%q", key), start, ttl, func() (bool, error) {
		_, err := st.Get(bg(), key)
		if errors.Is(err, store.ErrNotFound) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("Get(%q): %w", key, err)
		}
		return false, nil
	})
}

// waitGone moves the clock by ttl or, with real TTLs, polls gone until it
// reports what (set or added at start with TTL ttl) gone, failing if that
// happens before ttl or not within ttl and the suite's tolerance.
func (s *suite) waitGone(t *testing.T, what string, start time.Time, ttl time.Duration, gone func() (bool, error)) {
	t.Helper()
	if s.advance != nil {
		s.advance(ttl)
		return
	}
	deadline := start.Add(ttl + s.tolerance)
	for {
		g, err := gone()
		now := time.Now()
		switch {
		case err != nil:
			t.Fatalf("%v, while waiting for %s to expire", err, what)
		case g:
			if now.Before(start.Add(ttl)) {
				t.Fatalf("%s expired after %v, before its TTL of %v", what, now.Sub(start), ttl)
			}
			return
		case now.After(deadline):
			t.Fatalf("%s still there %v after it was written with TTL %v", what, now.Sub(start), ttl)
		}
		time.Sleep(5 * time.Millisecond) // polling a server-side expiry
	}
}

// realTTL is the TTL used when the suite waits for real expiry: long enough
// that the reads just after a write happen before it, on a loaded machine.
const realTTL = 300 * time.Millisecond

func (s *suite) ttl() time.Duration {
	if s.advance != nil {
		return time.Minute
	}
	return realTTL
}

// liveSince checks that key still holds want, if less than ttl has passed
// since start; past that, the check is meaningless and skipped.
func (s *suite) liveSince(t *testing.T, st store.Store, key string, want []byte, start time.Time, ttl time.Duration) {
	t.Helper()
	got, err := st.Get(bg(), key)
	if s.advance == nil && time.Since(start) >= ttl {
		t.Logf("machine too slow to check %q before its %v TTL (%v passed)", key, ttl, time.Since(start))
		return
	}
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) before its TTL = %s, %v; want %s", key, show(got), err, show(want))
	}
}

func (s *suite) expiry(t *testing.T) {
	st := s.store(t)
	ttl := s.ttl()
	start := time.Now()
	// "take" is written first: once "set" is seen expired, so is "take",
	// which the suite cannot poll without consuming it.
	mustSet(t, st, "take", []byte("v3"), ttl)
	mustSet(t, st, "set", []byte("v1"), ttl)
	if ok, err := st.SetNX(bg(), "setnx", []byte("v2"), ttl); !ok || err != nil {
		t.Fatalf("SetNX = %v, %v; want true, nil", ok, err)
	}
	mustSet(t, st, "long", []byte("v4"), time.Hour)
	s.liveSince(t, st, "set", []byte("v1"), start, ttl)
	s.liveSince(t, st, "setnx", []byte("v2"), start, ttl)

	s.expire(t, st, "set", start, ttl)
	wantNotFound(t, st, "set")
	if s.advance == nil {
		s.expire(t, st, "setnx", start, ttl)
	}
	wantNotFound(t, st, "setnx")
	if got, err := st.Take(bg(), "take"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Take of an expired key = %s, %v; want ErrNotFound", show(got), err)
	}
	wantValue(t, st, "long", []byte("v4"))
	// An expired key counts as absent for SetNX.
	if ok, err := st.SetNX(bg(), "set", []byte("new"), time.Hour); !ok || err != nil {
		t.Fatalf("SetNX on an expired key = %v, %v; want true, nil", ok, err)
	}
	wantValue(t, st, "set", []byte("new"))
	if err := st.Delete(bg(), "setnx"); err != nil {
		t.Fatalf("Delete of an expired key: %v", err)
	}
}

func (s *suite) setResetsTTL(t *testing.T) {
	st := s.store(t)
	ttl := s.ttl()
	mustSet(t, st, "k", []byte("v1"), ttl)
	mustSet(t, st, "k", []byte("v2"), time.Hour)
	start := time.Now()
	mustSet(t, st, "probe", nil, ttl)
	s.expire(t, st, "probe", start, ttl)
	wantValue(t, st, "k", []byte("v2"))
	// And a shorter TTL replaces a longer one.
	start = time.Now()
	mustSet(t, st, "k", []byte("v3"), ttl)
	s.expire(t, st, "k", start, ttl)
	wantNotFound(t, st, "k")
}

func (s *suite) getDoesNotExtendTTL(t *testing.T) {
	st := s.store(t)
	ttl := s.ttl()
	start := time.Now()
	mustSet(t, st, "k", []byte("v"), ttl)
	if s.advance != nil {
		s.advance(ttl / 2)
		wantValue(t, st, "k", []byte("v"))
		s.advance(ttl - ttl/2)
		wantNotFound(t, st, "k")
		return
	}
	s.liveSince(t, st, "k", []byte("v"), start, ttl)
	// Reading while waiting must not keep the record alive.
	s.expire(t, st, "k", start, ttl)
}

func (s *suite) setNXKeepsTTL(t *testing.T) {
	st := s.store(t)
	ttl := s.ttl()
	start := time.Now()
	mustSet(t, st, "k", []byte("first"), ttl)
	if ok, err := st.SetNX(bg(), "k", []byte("second"), time.Hour); ok || err != nil {
		t.Fatalf("SetNX on a present key = %v, %v; want false, nil", ok, err)
	}
	s.expire(t, st, "k", start, ttl)
	wantNotFound(t, st, "k")
}

func (s *suite) tinyAndLongTTL(t *testing.T) {
	st := s.store(t)
	// Below any store's resolution: valid, rounded up, never an error.
	if err := st.Set(bg(), "tiny", []byte("v"), time.Nanosecond); err != nil {
		t.Fatalf("Set with a 1ns TTL: %v", err)
	}
	if ok, err := st.SetNX(bg(), "tiny-nx", []byte("v"), time.Nanosecond); !ok || err != nil {
		t.Fatalf("SetNX with a 1ns TTL = %v, %v; want true, nil", ok, err)
	}
	mustSet(t, st, "year", []byte("v"), 366*24*time.Hour)
	if s.advance != nil {
		s.advance(365 * 24 * time.Hour)
	}
	wantValue(t, st, "year", []byte("v"))
	if s.advance != nil {
		wantNotFound(t, st, "tiny")
		wantNotFound(t, st, "tiny-nx")
		s.advance(24 * time.Hour)
		wantNotFound(t, st, "year")
	}
}

func (s *suite) takeRace(t *testing.T) {
	st := s.store(t)
	const rounds = 8
	for round := range rounds {
		key := fmt.Sprint("race-", round)
		val := []byte(fmt.Sprint("the-value-", round))
		mustSet(t, st, key, val, time.Hour)
		var (
			winners  atomic.Int32
			start    = make(chan struct{})
			wg       sync.WaitGroup
			errsMu   sync.Mutex
			failures []string
		)
		for range s.racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got, err := st.Take(bg(), key)
				switch {
				case err == nil && bytes.Equal(got, val):
					winners.Add(1)
				case errors.Is(err, store.ErrNotFound):
				default:
					errsMu.Lock()
					failures = append(failures, fmt.Sprintf("Take = %s, %v", show(got), err))
					errsMu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		for _, f := range failures {
			t.Errorf("round %d: %s", round, f)
		}
		if n := winners.Load(); n != 1 {
			t.Fatalf("round %d: %d of %d racing Takes got the value, want exactly 1", round, n, s.racers)
		}
		wantNotFound(t, st, key)
	}
}

func (s *suite) setNXRace(t *testing.T) {
	st := s.store(t)
	const rounds = 8
	for round := range rounds {
		key := fmt.Sprint("lease-", round)
		var (
			winner   atomic.Int32
			winners  atomic.Int32
			start    = make(chan struct{})
			wg       sync.WaitGroup
			errsMu   sync.Mutex
			failures []string
		)
		for i := range s.racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ok, err := st.SetNX(bg(), key, []byte(fmt.Sprint("owner-", i)), time.Hour)
				if err != nil {
					errsMu.Lock()
					failures = append(failures, fmt.Sprintf("SetNX by %d: %v", i, err))
					errsMu.Unlock()
					return
				}
				if ok {
					winners.Add(1)
					winner.Store(int32(i))
				}
			}()
		}
		close(start)
		wg.Wait()
		for _, f := range failures {
			t.Errorf("round %d: %s", round, f)
		}
		if n := winners.Load(); n != 1 {
			t.Fatalf("round %d: %d of %d racing SetNX won, want exactly 1", round, n, s.racers)
		}
		wantValue(t, st, key, []byte(fmt.Sprint("owner-", winner.Load())))
	}
}

// concurrentUse runs every method at once on overlapping keys; it finds data
// races (under -race) and errors that appear only under contention.
func (s *suite) concurrentUse(t *testing.T) {
	st := s.store(t)
	const workers, ops, keys = 8, 200, 16
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range ops {
				key := fmt.Sprint("c", r.IntN(keys))
				val := []byte(fmt.Sprint(w, "-", i))
				var err error
				switch r.IntN(5) {
				case 0:
					err = st.Set(bg(), key, val, time.Hour)
				case 1:
					_, err = st.SetNX(bg(), key, val, time.Hour)
				case 2:
					_, err = st.Get(bg(), key)
				case 3:
					_, err = st.Take(bg(), key)
				case 4:
					err = st.Delete(bg(), key)
				}
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					errc <- fmt.Errorf("worker %d op %d on %q: %w", w, i, key, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

// doneContextCalls calls every method with ctx and checks that each fails
// with an error matching want and changes nothing.
func (s *suite) doneContextCalls(t *testing.T, ctx context.Context, want error) {
	st := s.store(t)
	mustSet(t, st, "k", []byte("kept"), time.Hour)
	check := func(call string, err error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s with a done context: got %v, want an error matching %v", call, err, want)
		}
	}
	_, err := st.Get(ctx, "k")
	check("Get", err)
	check("Set", st.Set(ctx, "k", []byte("changed"), time.Hour))
	check("Set (new key)", st.Set(ctx, "new", []byte("v"), time.Hour))
	ok, err := st.SetNX(ctx, "nx", []byte("v"), time.Hour)
	check("SetNX", err)
	if ok {
		t.Error("SetNX with a done context reported true")
	}
	_, err = st.Take(ctx, "k")
	check("Take", err)
	_, err = st.GetEx(ctx, "k", time.Nanosecond)
	check("GetEx", err)
	check("Delete", st.Delete(ctx, "k"))

	if err := st.IndexAdd(bg(), "ix", "kept", time.Hour); err != nil {
		t.Fatalf("IndexAdd: %v", err)
	}
	check("IndexAdd", st.IndexAdd(ctx, "ix", "new", time.Hour))
	check("IndexAdd (new index)", st.IndexAdd(ctx, "ix2", "new", time.Hour))
	_, err = st.IndexMembers(ctx, "ix")
	check("IndexMembers", err)
	check("IndexRemove", st.IndexRemove(ctx, "ix", "kept"))
	check("Delete (index)", st.Delete(ctx, "ix"))

	wantValue(t, st, "k", []byte("kept"))
	wantNotFound(t, st, "new")
	wantNotFound(t, st, "nx")
	wantMembers(t, st, "ix", "kept")
	wantMembers(t, st, "ix2")
	if s.advance != nil {
		// GetEx's 1ns TTL was not applied either.
		s.advance(time.Minute)
		wantValue(t, st, "k", []byte("kept"))
	}
}

func (s *suite) canceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(bg())
	cancel()
	s.doneContextCalls(t, ctx, context.Canceled)
}

func (s *suite) expiredContext(t *testing.T) {
	ctx, cancel := context.WithDeadline(bg(), time.Now().Add(-time.Second))
	defer cancel()
	s.doneContextCalls(t, ctx, context.DeadlineExceeded)
}

func (s *suite) getEx(t *testing.T) {
	st := s.store(t)
	mustSet(t, st, "k", []byte("value"), time.Hour)
	got, err := st.GetEx(bg(), "k", time.Hour)
	if err != nil || string(got) != "value" {
		t.Fatalf("GetEx(k) = %s, %v; want %q", show(got), err, "value")
	}
	// GetEx does not consume, and leaves the value as it was.
	wantValue(t, st, "k", []byte("value"))
	// The slice GetEx returned belongs to the caller.
	copy(got, "MUTAT")
	wantValue(t, st, "k", []byte("value"))

	// An absent key stays absent: GetEx creates nothing.
	if v, err := st.GetEx(bg(), "missing", time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetEx(missing) = %s, %v; want ErrNotFound", show(v), err)
	}
	wantNotFound(t, st, "missing")
	if ok, err := st.SetNX(bg(), "missing", []byte("new"), time.Hour); !ok || err != nil {
		t.Fatalf("SetNX after GetEx of a missing key = %v, %v; want true, nil (GetEx must create nothing)", ok, err)
	}

	// A taken or deleted key stays gone.
	mustSet(t, st, "gone", []byte("v"), time.Hour)
	if err := st.Delete(bg(), "gone"); err != nil {
		t.Fatal(err)
	}
	if v, err := st.GetEx(bg(), "gone", time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetEx of a deleted key = %s, %v; want ErrNotFound", show(v), err)
	}
	wantNotFound(t, st, "gone")

	// Empty and binary values come back as they are.
	mustSet(t, st, "empty", nil, time.Hour)
	if v, err := st.GetEx(bg(), "empty", time.Hour); err != nil || len(v) != 0 {
		t.Fatalf("GetEx(empty) = %s, %v; want empty, nil", show(v), err)
	}
	bin := []byte("\x00\r\n$-1\r\n\xff\xfe")
	mustSet(t, st, "bin", bin, time.Hour)
	if v, err := st.GetEx(bg(), "bin", time.Hour); err != nil || !bytes.Equal(v, bin) {
		t.Fatalf("GetEx(bin) = %s, %v; want %s", show(v), err, show(bin))
	}

	// Bad arguments change nothing.
	if _, err := st.GetEx(bg(), "", time.Hour); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf(`GetEx("") = %v, want ErrInvalidArgument`, err)
	}
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := st.GetEx(bg(), "k", ttl); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("GetEx(ttl %v) = %v, want ErrInvalidArgument", ttl, err)
		}
	}
	wantValue(t, st, "k", []byte("value"))
}

// getExTTL: GetEx replaces the TTL, shorter or longer, and an expired
// record is absent for it.
func (s *suite) getExTTL(t *testing.T) {
	st := s.store(t)
	ttl := s.ttl()

	// Longer: a record about to expire is kept by GetEx.
	start := time.Now()
	mustSet(t, st, "extended", []byte("v1"), ttl)
	mustSet(t, st, "probe", nil, ttl)
	if v, err := st.GetEx(bg(), "extended", time.Hour); err != nil || string(v) != "v1" {
		if s.advance == nil && time.Since(start) >= ttl {
			t.Skipf("machine too slow to call GetEx before the %v TTL", ttl)
		}
		t.Fatalf("GetEx(extended) = %s, %v; want %q", show(v), err, "v1")
	}
	s.expire(t, st, "probe", start, ttl)
	wantValue(t, st, "extended", []byte("v1"))

	// Shorter: a record kept for an hour expires at GetEx's TTL.
	mustSet(t, st, "shortened", []byte("v2"), time.Hour)
	start = time.Now()
	if v, err := st.GetEx(bg(), "shortened", ttl); err != nil || string(v) != "v2" {
		t.Fatalf("GetEx(shortened) = %s, %v; want %q", show(v), err, "v2")
	}
	s.liveSince(t, st, "shortened", []byte("v2"), start, ttl)
	s.expire(t, st, "shortened", start, ttl)
	wantNotFound(t, st, "shortened")

	// Expired: absent for GetEx, which does not bring it back.
	if v, err := st.GetEx(bg(), "shortened", time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetEx of an expired key = %s, %v; want ErrNotFound", show(v), err)
	}
	wantNotFound(t, st, "shortened")
	if ok, err := st.SetNX(bg(), "shortened", []byte("new"), time.Hour); !ok || err != nil {
		t.Fatalf("SetNX after GetEx of an expired key = %v, %v; want true, nil", ok, err)
	}

	// Repeated GetEx keeps moving the deadline (a session's idle timeout).
	if s.advance != nil {
		mustSet(t, st, "idle", []byte("v3"), time.Minute)
		for range 5 {
			s.advance(50 * time.Second)
			if v, err := st.GetEx(bg(), "idle", time.Minute); err != nil || string(v) != "v3" {
				t.Fatalf("GetEx(idle) within its idle TTL = %s, %v; want %q", show(v), err, "v3")
			}
		}
		s.advance(time.Minute)
		wantNotFound(t, st, "idle")
	}
}

// getExRace: GetEx racing Set never writes an old value back, and GetEx
// racing Take never brings a taken record back.
func (s *suite) getExRace(t *testing.T) {
	st := s.store(t)
	const writes = 200
	mustSet(t, st, "k", []byte("0"), time.Hour)
	var (
		wg       sync.WaitGroup
		done     atomic.Bool
		errsMu   sync.Mutex
		failures []string
	)
	fail := func(format string, args ...any) {
		errsMu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		errsMu.Unlock()
	}
	readers := s.racers / 4
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := -1
			for !done.Load() {
				v, err := st.GetEx(bg(), "k", time.Hour)
				if err != nil {
					fail("reader %d: GetEx = %v", r, err)
					return
				}
				var n int
				if _, err := fmt.Sscan(string(v), &n); err != nil {
					fail("reader %d: GetEx = %s, not a value that was written", r, show(v))
					return
				}
				if n < last {
					fail("reader %d: GetEx saw %d after %d: an older value was written back", r, n, last)
					return
				}
				last = n
			}
		}()
	}
	for i := 1; i <= writes; i++ {
		mustSet(t, st, "k", []byte(fmt.Sprint(i)), time.Hour)
	}
	done.Store(true)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	wantValue(t, st, "k", []byte(fmt.Sprint(writes)))

	// Take racing GetEx: exactly one Take wins and nothing remains.
	for round := range 8 {
		key := fmt.Sprint("tx-", round)
		mustSet(t, st, key, []byte("v"), time.Hour)
		start := make(chan struct{})
		var taken atomic.Int32
		for i := range s.racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				var err error
				if i%2 == 0 {
					if _, err = st.Take(bg(), key); err == nil {
						taken.Add(1)
					}
				} else {
					_, err = st.GetEx(bg(), key, time.Hour)
				}
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					fail("round %d: %v", round, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := taken.Load(); n != 1 {
			t.Fatalf("round %d: %d Takes racing GetEx got the value, want exactly 1", round, n)
		}
		wantNotFound(t, st, key)
	}
	for _, f := range failures {
		t.Error(f)
	}
}

func wantMembers(t *testing.T, st store.Store, key string, want ...string) {
	t.Helper()
	got, err := st.IndexMembers(bg(), key)
	if err != nil {
		t.Fatalf("IndexMembers(%q): %v", key, err)
	}
	g := slices.Clone(got)
	slices.Sort(g)
	w := slices.Clone(want)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Fatalf("IndexMembers(%q) = %q, want %q", key, g, w)
	}
}

func mustIndexAdd(t *testing.T, st store.Store, key, member string, ttl time.Duration) {
	t.Helper()
	if err := st.IndexAdd(bg(), key, member, ttl); err != nil {
		t.Fatalf("IndexAdd(%q, %q, %v): %v", key, member, ttl, err)
	}
}

func (s *suite) index(t *testing.T) {
	st, other := s.store(t), s.store(t)
	wantMembers(t, st, "ix")
	for _, m := range []string{"a", "b", "sess:{9f86d081}", strings.Repeat("m", 200)} {
		mustIndexAdd(t, st, "ix", m, time.Hour)
	}
	wantMembers(t, st, "ix", "a", "b", "sess:{9f86d081}", strings.Repeat("m", 200))
	// Adding a member twice keeps one.
	mustIndexAdd(t, st, "ix", "a", time.Hour)
	wantMembers(t, st, "ix", "a", "b", "sess:{9f86d081}", strings.Repeat("m", 200))
	if err := st.IndexRemove(bg(), "ix", "b"); err != nil {
		t.Fatalf("IndexRemove(ix, b): %v", err)
	}
	wantMembers(t, st, "ix", "a", "sess:{9f86d081}", strings.Repeat("m", 200))
	for _, call := range []struct{ key, member string }{{"ix", "b"}, {"ix", "never"}, {"no-such-index", "a"}} {
		if err := st.IndexRemove(bg(), call.key, call.member); err != nil {
			t.Fatalf("IndexRemove(%q, %q) of a missing member: %v, want nil", call.key, call.member, err)
		}
	}
	// Indexes are apart from each other, from records, and from other stores.
	mustIndexAdd(t, st, "ix:2", "z", time.Hour)
	mustIndexAdd(t, st, "IX", "y", time.Hour)
	wantMembers(t, st, "ix", "a", "sess:{9f86d081}", strings.Repeat("m", 200))
	wantMembers(t, st, "ix:2", "z")
	wantMembers(t, st, "IX", "y")
	wantMembers(t, other, "ix")
	mustIndexAdd(t, other, "ix", "other", time.Hour)
	wantMembers(t, st, "ix", "a", "sess:{9f86d081}", strings.Repeat("m", 200))

	// Delete removes the whole index; it can be built again afterwards.
	if err := st.Delete(bg(), "ix"); err != nil {
		t.Fatalf("Delete(ix): %v", err)
	}
	wantMembers(t, st, "ix")
	wantMembers(t, st, "ix:2", "z")
	mustIndexAdd(t, st, "ix", "c", time.Hour)
	wantMembers(t, st, "ix", "c")
	// Removing the last member leaves an empty index, which is no index.
	if err := st.IndexRemove(bg(), "ix", "c"); err != nil {
		t.Fatal(err)
	}
	wantMembers(t, st, "ix")
	wantMembers(t, other, "ix", "other")
}

func (s *suite) indexInvalidArguments(t *testing.T) {
	st := s.store(t)
	ctx := bg()
	wantInvalid := func(call string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", call, err)
		}
	}
	mustIndexAdd(t, st, "ix", "kept", time.Hour)
	wantInvalid(`IndexAdd(ix, "")`, st.IndexAdd(ctx, "ix", "", time.Hour))
	wantInvalid(`IndexAdd(new, "")`, st.IndexAdd(ctx, "new", "", time.Hour))
	wantInvalid(`IndexAdd("", m)`, st.IndexAdd(ctx, "", "m", time.Hour))
	wantInvalid(`IndexRemove(ix, "")`, st.IndexRemove(ctx, "ix", ""))
	wantInvalid(`IndexRemove("", m)`, st.IndexRemove(ctx, "", "m"))
	_, err := st.IndexMembers(ctx, "")
	wantInvalid(`IndexMembers("")`, err)
	for _, ttl := range []time.Duration{0, -time.Second} {
		wantInvalid(fmt.Sprintf("IndexAdd(ttl %v)", ttl), st.IndexAdd(ctx, "ix", "other", ttl))
		wantInvalid(fmt.Sprintf("IndexAdd(existing member, ttl %v)", ttl), st.IndexAdd(ctx, "ix", "kept", ttl))
		wantInvalid(fmt.Sprintf("IndexAdd(new index, ttl %v)", ttl), st.IndexAdd(ctx, "new", "m", ttl))
	}
	wantMembers(t, st, "ix", "kept")
	wantMembers(t, st, "new")
	if s.advance != nil {
		// The refused TTLs did not replace the member's.
		s.advance(time.Minute)
		wantMembers(t, st, "ix", "kept")
	}
}

// expireMember waits until member, added at start with TTL ttl, has left the
// index: by moving the clock, or by polling (real TTLs), checking it did
// not leave early.
func (s *suite) expireMember(t *testing.T, st store.Store, key, member string, start time.Time, ttl time.Duration) {
	t.Helper()
	s.waitGone(t, fmt.Sprintf("member %q of %q", member, key), start, ttl, func() (bool, error) {
		got, err := st.IndexMembers(bg(), key)
		if err != nil {
			return false, fmt.Errorf("IndexMembers(%q): %w", key, err)
		}
		return !slices.Contains(got, member), nil
	})
}

// membersSince checks that the index holds want, if less than ttl has
// passed since start (else the check is skipped, as in liveSince).
func (s *suite) membersSince(t *testing.T, st store.Store, key string, start time.Time, ttl time.Duration, want ...string) {
	t.Helper()
	got, err := st.IndexMembers(bg(), key)
	if s.advance == nil && time.Since(start) >= ttl {
		t.Logf("machine too slow to check %q before its %v TTL (%v passed)", key, ttl, time.Since(start))
		return
	}
	if err != nil {
		t.Fatalf("IndexMembers(%q): %v", key, err)
	}
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Fatalf("IndexMembers(%q) before the TTL = %q, want %q", key, g, w)
	}
}

func (s *suite) indexMemberExpiry(t *testing.T) {
	st := s.store(t)
	ttl := s.ttl()
	start := time.Now()
	mustIndexAdd(t, st, "ix", "short-1", ttl)
	mustIndexAdd(t, st, "ix", "short-2", ttl)
	mustIndexAdd(t, st, "ix", "long", 2*time.Hour)
	s.membersSince(t, st, "ix", start, ttl, "short-1", "short-2", "long")
	s.expireMember(t, st, "ix", "short-1", start, ttl)
	// short-2 was added after short-1: on a real server it may outlive it
	// by the time between the two writes.
	s.expireMember(t, st, "ix", "short-2", start, ttl)
	wantMembers(t, st, "ix", "long")
	// An expired member can come back, with its new TTL only.
	mustIndexAdd(t, st, "ix", "short-1", time.Hour)
	wantMembers(t, st, "ix", "long", "short-1")
	if s.advance != nil {
		s.advance(time.Hour - time.Nanosecond)
		wantMembers(t, st, "ix", "long", "short-1")
		s.advance(time.Nanosecond)
		wantMembers(t, st, "ix", "long")
		s.advance(time.Hour)
		wantMembers(t, st, "ix")
	}
}

// indexReAddSetsTTL: adding a member again replaces its TTL, longer or
// shorter.
func (s *suite) indexReAddSetsTTL(t *testing.T) {
	st := s.store(t)
	ttl := s.ttl()
	start := time.Now()
	mustIndexAdd(t, st, "ix", "extended", ttl)
	mustIndexAdd(t, st, "ix", "probe", ttl)
	mustIndexAdd(t, st, "ix", "extended", time.Hour)
	mustIndexAdd(t, st, "ix", "shortened", time.Hour)
	start2 := time.Now()
	mustIndexAdd(t, st, "ix", "shortened", ttl)
	s.expireMember(t, st, "ix", "probe", start, ttl)
	if s.advance == nil {
		s.expireMember(t, st, "ix", "shortened", start2, ttl)
	}
	wantMembers(t, st, "ix", "extended")
}

// indexExpiresWithLastMember: the index lives while any member does, not
// by its first member's TTL, and once its last member has expired it is
// gone: a new member starts an index of one.
func (s *suite) indexExpiresWithLastMember(t *testing.T) {
	st := s.store(t)
	ttl := s.ttl()
	start := time.Now()
	mustIndexAdd(t, st, "ix", "first", ttl)
	mustIndexAdd(t, st, "ix", "second", 2*ttl)
	s.membersSince(t, st, "ix", start, ttl, "first", "second")
	s.expireMember(t, st, "ix", "first", start, ttl)
	s.membersSince(t, st, "ix", start, 2*ttl, "second")
	if s.advance != nil {
		s.advance(ttl)
	} else {
		s.expireMember(t, st, "ix", "second", start, 2*ttl)
	}
	wantMembers(t, st, "ix")
	mustIndexAdd(t, st, "ix", "third", time.Hour)
	wantMembers(t, st, "ix", "third")
}

// indexAddRace: many goroutines adding to one index lose no member.
func (s *suite) indexAddRace(t *testing.T) {
	st := s.store(t)
	const perRacer = 4
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		errsMu   sync.Mutex
		failures []string
		want     []string
	)
	for i := range s.racers {
		for j := range perRacer {
			want = append(want, fmt.Sprintf("m-%d-%d", i, j))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for j := range perRacer {
				if err := st.IndexAdd(bg(), "ix", fmt.Sprintf("m-%d-%d", i, j), time.Hour); err != nil {
					errsMu.Lock()
					failures = append(failures, fmt.Sprintf("IndexAdd by %d: %v", i, err))
					errsMu.Unlock()
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	got, err := st.IndexMembers(bg(), "ix")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		slices.Sort(got)
		var lost []string
		for _, m := range want {
			if !slices.Contains(got, m) {
				lost = append(lost, m)
			}
		}
		t.Fatalf("%d racing IndexAdds left %d members, want %d; lost %q", len(want), len(got), len(want), lost)
	}
	wantMembers(t, st, "ix", want...)
}
