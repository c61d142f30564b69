package stepup

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stepupauth/stepup/store"
)

// This file holds what every stored record of a session shares: the compact
// binary codec (no reflection: a page load that must decode its session
// record, see sessionCache, does so with a few slice operations and one
// string allocation), the sealed read and
// write (every record the Client writes is sealed with the key ring and bound
// to its store key, see keyRing.sealRecord), and the rate-limited log of
// records that do not open.
//
// Records of the previous version (JSON, unsealed) do not open: they are
// absent, and their users sign in again (README, "Upgrading").

// recWriter appends the fields of a record.
type recWriter struct{ b []byte }

func (w *recWriter) byte(v byte) { w.b = append(w.b, v) }

func (w *recWriter) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }

func (w *recWriter) varint(v int64) { w.b = binary.AppendVarint(w.b, v) }

// str appends a length-prefixed string.
func (w *recWriter) str(s string) {
	w.b = binary.AppendUvarint(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
}

// recReader reads the fields a recWriter wrote. It takes the plaintext as a
// string, so that the strings it returns are substrings of it: one
// allocation for the whole record. The first malformed field sets bad; every
// read after it returns zero values.
type recReader struct {
	s   string
	bad bool
}

func (r *recReader) byte() byte {
	if r.bad || len(r.s) == 0 {
		r.bad = true
		return 0
	}
	b := r.s[0]
	r.s = r.s[1:]
	return b
}

func (r *recReader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if i >= len(r.s) {
			break
		}
		b := r.s[i]
		if i == binary.MaxVarintLen64-1 && b > 1 {
			break
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			r.s = r.s[i+1:]
			return v
		}
	}
	r.bad = true
	return 0
}

func (r *recReader) varint() int64 {
	u := r.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// str reads a length-prefixed string of at most max bytes.
func (r *recReader) str(max int) string {
	n := r.uvarint()
	if r.bad || n > uint64(max) || n > uint64(len(r.s)) {
		r.bad = true
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

// fixed reads exactly n bytes.
func (r *recReader) fixed(n int) string {
	if r.bad || len(r.s) < n {
		r.bad = true
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

// done reports whether the record was read whole and well.
func (r *recReader) done() bool { return !r.bad && len(r.s) == 0 }

// Record kinds, for the log of records that do not open or decode.
const (
	kindSession   = "session"
	kindToken     = "token"
	kindLease     = "lease"
	kindOutOfBand = "out-of-band"
	kindMFA       = "mfa-binding"
	numKinds      = 5
)

func kindIndex(kind string) int {
	switch kind {
	case kindSession:
		return 0
	case kindToken:
		return 1
	case kindLease:
		return 2
	case kindOutOfBand:
		return 3
	default:
		return 4
	}
}

// unreadableLogEvery is how often, at most, each kind of unreadable record
// is logged: a store full of records of the previous version (or a forger
// at work) must not flood the log.
const unreadableLogEvery = time.Minute

// unreadableLog rate-limits the log of unreadable records per kind.
type unreadableLog struct {
	mu      sync.Mutex
	last    [numKinds]time.Time
	dropped [numKinds]int
}

// unreadable logs (at most once per minute and kind, real time) that a
// record of kind did not open or decode. It never logs the record's content
// or key: only its kind, the cause's class and how many were not logged.
func (c *Client) unreadable(ctx context.Context, kind string, err error) {
	i := kindIndex(kind)
	l := &c.unreadableLog
	now := time.Now()
	l.mu.Lock()
	if !l.last[i].IsZero() && now.Sub(l.last[i]) < unreadableLogEvery {
		l.dropped[i]++
		l.mu.Unlock()
		return
	}
	l.last[i] = now
	dropped := l.dropped[i]
	l.dropped[i] = 0
	l.mu.Unlock()
	why := "does not open (written without the Client's keys, moved from another key, tampered, or of the previous version)"
	if !errors.Is(err, errUnseal) {
		why = "opens but does not decode"
	}
	c.log.ErrorContext(ctx, "stepup: unreadable "+kind+" record treated as absent",
		"why", why, "not_logged_since", dropped)
}

// getRecord reads the record with key and opens it. A missing record is
// store.ErrNotFound; a record that does not open is store.ErrNotFound too
// (it is absent), logged (see unreadable). getex > 0 moves the record's TTL
// to getex in the same command (Store.GetEx).
func (c *Client) getRecord(ctx context.Context, kind, key string, getex time.Duration) ([]byte, error) {
	data, err := c.getSealed(ctx, key, getex)
	if err != nil {
		return nil, err
	}
	pt, err := c.ring.openRecordInPlace(key, data)
	if err != nil {
		c.unreadable(ctx, kind, err)
		return nil, store.ErrNotFound
	}
	return pt, nil
}

// getSealed reads key (and, with getex > 0, moves its TTL) as stored,
// sealed, bounded by StoreTimeout.
func (c *Client) getSealed(ctx context.Context, key string, getex time.Duration) ([]byte, error) {
	sctx, done := c.storeContext(ctx)
	var data []byte
	var err error
	if getex > 0 {
		data, err = c.store.GetEx(sctx, key, getex)
	} else {
		data, err = c.store.Get(sctx, key)
	}
	return data, done(err)
}

// putRecord seals plaintext for key and writes it with ttl.
func (c *Client) putRecord(ctx context.Context, key string, plaintext []byte, ttl time.Duration) error {
	sctx, done := c.storeContext(ctx)
	return done(c.store.Set(sctx, key, c.ring.sealRecord(key, plaintext), ttl))
}

// deleteKey deletes one key, bounded by StoreTimeout.
func (c *Client) deleteKey(ctx context.Context, key string) error {
	sctx, done := c.storeContext(ctx)
	return done(c.store.Delete(sctx, key))
}

// indexAdd adds member to the index key, bounded by StoreTimeout.
func (c *Client) indexAdd(ctx context.Context, key, member string, ttl time.Duration) error {
	sctx, done := c.storeContext(ctx)
	if err := done(c.store.IndexAdd(sctx, key, member, ttl)); err != nil {
		return fmt.Errorf("stepup: indexing a session: %w", err)
	}
	return nil
}
