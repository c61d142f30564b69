// Package store defines the Store that stepup keeps its state in, and the
// in-memory Store that is stepup's default.
//
// A Store is a byte-level key-value store with time-to-live: get,
// get-and-extend (one atomic command), set, set-if-absent (leases and
// single-use markers), atomic take (get-and-delete), delete, and small
// indexes (sets of strings whose members expire one by one, so that sessions
// can be found by Auth0 session id or user). It knows nothing of stepup's records: the Client encodes them
// (and seals any token in them) before they reach a Store, so an adapter for
// another database (PostgreSQL, DynamoDB, memcached...) is a small file.
// Every Store must pass the conformance suite in package
// [github.com/stepupauth/stepup/store/storetest].
//
// The in-memory Store ([NewMemory]) serves one process. Replicas that share
// state use a shared Store, such as package
// [github.com/stepupauth/stepup/redisstore].
//
// This package is not a cache: a Store never evicts a live record to make
// room; when it cannot keep a write it says so with an error.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors that Store methods return, or wrap. Callers test them with errors.Is.
var (
	// ErrNotFound: no live record has the key (it was never set, was deleted
	// or taken, or has expired).
	ErrNotFound = errors.New("stepup: store: not found")

	// ErrUnavailable: the Store could not complete the call (connection
	// refused or lost, timeout, server error, a full or closed store). The
	// outcome of a write that failed this way is unknown: it may or may not
	// have been applied. Callers fail closed on it (an HTTP service answers
	// 503). Stores wrap the underlying cause, so errors.Is and errors.As see
	// it as well.
	ErrUnavailable = errors.New("stepup: store: unavailable")

	// ErrInvalidArgument: the call itself is wrong (an empty key, a TTL that
	// is not positive). Nothing was changed. It is a programming error,
	// never a transient condition.
	ErrInvalidArgument = errors.New("stepup: store: invalid argument")
)

// Store is a key-value store with time-to-live, safe for concurrent use by
// many goroutines (and, for a shared Store, by many processes).
//
// # Keys
//
// A key is a non-empty string. Callers (stepup itself) use at most 200 bytes
// of printable ASCII without spaces (0x21 to 0x7E), such as
// "used:Ab3-_x" or "sess:{9f86d0}", so that any database can hold them; a Store
// must accept every such key, keeps keys that differ by a byte apart (keys
// are case-sensitive and a key that is a prefix of another is a different
// key), and may prefix them (a namespace) as long as it does so
// consistently. A Store returns ErrInvalidArgument for an empty key.
//
// # Values
//
// A value is any byte sequence, empty included, of up to at least 1 MiB.
// Set and SetNX copy the value before they return: the caller may reuse its
// slice. Get and Take return a slice the caller owns: changing it does not
// change the store. An empty value is returned with length 0 and a nil error;
// whether that slice is nil is unspecified.
//
// # Time to live
//
// Every record has a TTL, which must be greater than 0 (otherwise
// ErrInvalidArgument, and nothing is written). A Store may round a TTL up to
// its resolution (Redis: a millisecond), never down. A record set at time t
// with TTL d is live before t+d by the Store's clock and never returned at or
// after it: expiry is exact for readers, even if the Store reclaims the space
// later. Get does not extend a TTL; Set replaces it; GetEx sets it.
//
// # Contexts
//
// ctx is the first argument of every method. If ctx is already done when a
// method is called, the method changes nothing and returns an error for which
// errors.Is(err, ctx.Err()) holds. If ctx ends while a remote Store is
// working, the method returns without waiting further, with an error that
// matches both ctx.Err() and ErrUnavailable; the outcome of a write is then
// unknown. A Store never blocks beyond ctx's deadline waiting for a server.
//
// # Errors
//
// Besides ctx errors, methods return nil, ErrNotFound (Get, GetEx, Take only),
// ErrInvalidArgument, or an error that matches ErrUnavailable. Error messages
// never include values.
type Store interface {
	// Get returns a copy of the value of the live record with the key, or
	// ErrNotFound. It does not change the record or its TTL.
	Get(ctx context.Context, key string) ([]byte, error)

	// Set writes the record, replacing any record with the key (its value and
	// its TTL), live or expired.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error

	// SetNX writes the record only if no live record has the key (an expired
	// one counts as absent), and reports whether it did. When it returns
	// false the existing record, value and TTL, is left unchanged. Of many
	// concurrent SetNX calls for one absent key, in one process or many,
	// exactly one returns true: it is the primitive for leases (lock with
	// expiry).
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)

	// Take returns the value of the live record with the key and deletes the
	// record, atomically: of many concurrent Take calls for one key, in one
	// process or many, exactly one returns the value and the others
	// ErrNotFound: the primitive for one-time records. (stepup itself
	// consumes none this way any more: its authorization transactions
	// travel in the browser's cookie, and a callback's single use is a
	// SetNX marker.) A missing or expired key gives ErrNotFound.
	Take(ctx context.Context, key string) ([]byte, error)

	// GetEx returns a copy of the value of the live record with the key and
	// sets the record's TTL to ttl, atomically: one command (Redis: GETEX
	// PX), the value unchanged. A missing or expired key gives ErrNotFound
	// and creates nothing. It is how a page load moves a session's idle
	// deadline without rewriting the session.
	GetEx(ctx context.Context, key string, ttl time.Duration) ([]byte, error)

	// Delete removes the record or the index with the key. Deleting a
	// missing or expired key is not an error.
	Delete(ctx context.Context, key string) error

	// IndexAdd adds member to the index (a set of strings) with the key,
	// live for ttl by the Store's clock; a member already there gets the new
	// TTL. The index exists while it has a live member; members that have
	// expired are never returned and are reclaimed on the way. Concurrent
	// IndexAdd calls on one key, in one process or many, lose no member.
	// A member follows the rules of a key (non-empty, at most 200 bytes of
	// printable ASCII when stepup writes it); an empty member is
	// ErrInvalidArgument.
	IndexAdd(ctx context.Context, key, member string, ttl time.Duration) error

	// IndexMembers returns the live members of the index with the key, in
	// no particular order; an absent index gives none and a nil error.
	IndexMembers(ctx context.Context, key string) ([]string, error)

	// IndexRemove removes member from the index with the key. Removing a
	// missing member is not an error.
	IndexRemove(ctx context.Context, key, member string) error
}

// A key names either a record (Get, GetEx, Set, SetNX, Take) or an index
// (IndexAdd, IndexMembers, IndexRemove), never both: a caller that mixes
// them on one key gets an error (ErrInvalidArgument or ErrUnavailable) or
// an unspecified result, never a panic. Delete removes either.

// checkKey validates a key as the Store contract asks.
func checkKey(key string) error {
	if key == "" {
		return errEmptyKey
	}
	return nil
}

// checkTTL validates a TTL as the Store contract asks.
func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return errBadTTL
	}
	return nil
}

var (
	errEmptyKey = wrapf(ErrInvalidArgument, "empty key")
	errBadTTL   = wrapf(ErrInvalidArgument, "TTL must be greater than 0")
)

// wrappedError is a preallocated error: "stepup: store: <msg>" that matches
// its sentinel. Hot paths return it without allocating.
type wrappedError struct {
	msg      string
	sentinel error
}

func wrapf(sentinel error, msg string) error {
	return &wrappedError{msg: sentinel.Error() + ": " + msg, sentinel: sentinel}
}

func (e *wrappedError) Error() string { return e.msg }
func (e *wrappedError) Unwrap() error { return e.sentinel }
