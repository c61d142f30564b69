package stepup

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Defaults of a keySet.
const (
	// defaultMinRefetchInterval bounds how often an unknown kid may trigger a
	// JWKS fetch: a flood of tokens with random kids costs the tenant at most
	// one fetch per interval (plus one after each background refresh). Only
	// unknown-kid refetches that worked count: the first fetch and the
	// background refreshes do not, so a rotation right after start-up is
	// picked up by the next token.
	defaultMinRefetchInterval = 30 * time.Second
	// defaultFailureBackoff is how long a failed fetch is remembered: during
	// it, callers fail closed at once with the fetch's error (a
	// *TenantError, 503) instead of queueing more fetches; after it, the next
	// token that needs the JWKS tries again. Short, because a tenant that is
	// back should be used at once, and long enough that an outage costs the
	// tenant at most one request per backoff.
	defaultFailureBackoff = 2 * time.Second
	// maxUnknownKIDs bounds the kids remembered as unknown.
	maxUnknownKIDs = 1024
	// maxKIDLen bounds the kid of a token that may trigger a refetch (and
	// be remembered): issuers use far shorter ones (Auth0: ~40 bytes).
	maxKIDLen = 256
	// defaultRefreshInterval is the background refresh period of jwk.Cache.
	defaultRefreshInterval = 10 * time.Minute
	// defaultFetchTimeout bounds one JWKS request when the HTTP client has no timeout.
	defaultFetchTimeout = 10 * time.Second
	// maxJWKSBytes bounds the JWKS document we read.
	maxJWKSBytes = 1 << 20
)

// jwksEndpoint names the endpoint in *TenantError.
const jwksEndpoint = "/.well-known/jwks.json"

// keySet is the tenant's signing keys, fetched lazily from its JWKS URL on
// first use (construction does no I/O and starts no goroutine), kept fresh by
// jwx's jwk.Cache in the background, and refetched once, on demand, when a
// token names a kid the set does not have (key rotation). Concurrent callers
// share one fetch.
//
// The unknown-kid refetch: the first unknown kid after any fetch (the first
// one, a background refresh, or an earlier refetch) is refetched at once;
// after a refetch that worked, the next one waits minRefetch, unless a
// background refresh came in between. A kid still unknown after its refetch
// is remembered as unknown for minRefetch and refused without a fetch. So a
// rotation at any moment is seen by the next token, and a flood of random
// kids costs about one fetch per interval.
//
// When the key set has never been fetched, or a fetch an unknown kid
// triggered fails, callers get an error matching ErrTenantUnavailable (503),
// never "unknown key": no token is accepted or refused on a guess. A failed
// fetch is retried after failureBackoff. Once fetched, a set is kept while
// background refreshes fail (Auth0 signing keys live for months).
//
// Keys of type "oct" (symmetric) published in a JWKS are ignored: a
// public document cannot hold a verification secret.
type keySet struct {
	url        string
	httpClient *http.Client
	now        func() time.Time

	minRefetch     time.Duration
	failureBackoff time.Duration

	snap atomic.Pointer[keySnapshot] // current keys; nil until the first successful fetch
	gen  atomic.Uint64               // counts snapshots

	mu       sync.Mutex // guards the fields below
	cache    *jwk.Cache
	cancel   context.CancelFunc
	closed   bool
	inflight *fetchCall
	// refetchAt is the start of the last unknown-kid refetch that worked,
	// and refetchGen the generation of the snapshot it produced: a newer
	// snapshot (a background refresh) allows the next refetch at once.
	refetchAt  time.Time
	refetchGen uint64
	lastErr    error     // error of the last on-demand fetch, nil once one works
	lastErrAt  time.Time // when lastErr's fetch started
	// unknown remembers, until the time it maps to, the kids that were still
	// unknown after a refetch.
	unknown map[string]time.Time
}

// fetchCall is one in-flight fetch shared by all callers that want it.
type fetchCall struct {
	done chan struct{}
	err  error
}

// keySnapshot is an immutable view of one fetched JWKS.
type keySnapshot struct {
	gen   uint64
	keys  []*verificationKey
	byKID map[string][]*verificationKey
}

// verificationKey is one public key of the set.
type verificationKey struct {
	kid string
	alg string // the JWK's alg, "" when it has none
	kty string // "RSA", "EC", "OKP"
	key any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	// fingerprint identifies the key material across snapshots.
	fingerprint [32]byte
}

// acceptsAlg reports whether k may verify a signature made with alg.
//
// An RSA key labelled with an RSA algorithm accepts the other RSA algorithms:
// Auth0 labels its tenant keys RS256 and signs with the same keys the ID
// tokens of applications configured for PS256. The header alg must still be
// allowed by the verifier, and the key type must fit.
func (k *verificationKey) acceptsAlg(alg string) bool {
	if k.alg != "" && k.alg != alg && !(isRSAAlg(k.alg) && isRSAAlg(alg)) {
		return false
	}
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return k.kty == "RSA"
	case "ES256", "ES384", "ES512":
		return k.kty == "EC"
	case "EdDSA":
		return k.kty == "OKP"
	}
	return false
}

func isRSAAlg(alg string) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return true
	}
	return false
}

// newKeySet returns a key set for jwksURL. It does no I/O. httpClient nil
// means http.DefaultClient; now nil means time.Now.
func newKeySet(jwksURL string, httpClient *http.Client, now func() time.Time) *keySet {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	if now == nil {
		now = time.Now
	}
	return &keySet{
		url:            jwksURL,
		httpClient:     httpClient,
		now:            now,
		minRefetch:     defaultMinRefetchInterval,
		failureBackoff: defaultFailureBackoff,
	}
}

// errKeySetClosed is returned by a closed keySet; it matches ErrTenantUnavailable
// through the *TenantError that carries it.
var errKeySetClosed = errors.New("key set closed")

// Close stops the background refresh. It is safe to call more than once.
// jwx's cache offers no way to wait for its goroutines: they end soon after
// Close, when they see their context cancelled.
func (k *keySet) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	if k.cancel != nil {
		k.cancel()
	}
	return nil
}

// current returns the keys, fetching them on first use.
func (k *keySet) current(ctx context.Context) (*keySnapshot, error) {
	if s := k.snap.Load(); s != nil {
		return s, nil
	}
	if err := k.fetch(ctx, nil, ""); err != nil {
		return nil, err
	}
	if s := k.snap.Load(); s != nil {
		return s, nil
	}
	return nil, k.unavailable(errors.New("JWKS holds no usable key"))
}

// candidates returns the keys that may have signed a token with header kid
// and alg. A kid the set does not know triggers one shared refetch (see
// keySet). Without a kid, every key that accepts alg is a candidate (Auth0
// always sends a kid; other issuers with a single key may not).
func (k *keySet) candidates(ctx context.Context, kid, alg string) ([]*verificationKey, error) {
	keys, _, err := k.candidatesIn(ctx, kid, alg)
	return keys, err
}

// candidatesIn is candidates, and also returns the snapshot the keys are
// from: the same kid and alg give the same keys for as long as it is the
// current one (see jwsVerifier.known).
func (k *keySet) candidatesIn(ctx context.Context, kid, alg string) ([]*verificationKey, *keySnapshot, error) {
	s, err := k.current(ctx)
	if err != nil {
		return nil, nil, err
	}
	if kid == "" {
		return s.withoutKID(alg), s, nil
	}
	if keys, ok := s.byKID[kid]; ok {
		return keys, s, nil
	}
	if len(kid) > maxKIDLen {
		return nil, nil, &TokenError{Kind: ErrTokenUnknownKey, Claim: "kid", Detail: "kid too long"}
	}
	if err := k.fetch(ctx, s, kid); err != nil {
		if errors.Is(err, errRefetchLimited) {
			return nil, nil, &TokenError{Kind: ErrTokenUnknownKey, Claim: "kid", Detail: "no key with this kid in the JWKS (refetched recently)"}
		}
		return nil, nil, err
	}
	s = k.snap.Load()
	if keys, ok := s.byKID[kid]; ok {
		return keys, s, nil
	}
	k.rememberUnknown(kid)
	return nil, nil, &TokenError{Kind: ErrTokenUnknownKey, Claim: "kid", Detail: "no key with this kid in the JWKS"}
}

// rememberUnknown notes kid as unknown for minRefetch. The map is bounded:
// when full, expired entries go; if none has, kid is not remembered (it is
// then still refused while the refetch interval runs).
func (k *keySet) rememberUnknown(kid string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if k.unknown == nil {
		k.unknown = make(map[string]time.Time)
	}
	if len(k.unknown) >= maxUnknownKIDs {
		for id, until := range k.unknown {
			if !now.Before(until) {
				delete(k.unknown, id)
			}
		}
		if len(k.unknown) >= maxUnknownKIDs {
			return
		}
	}
	k.unknown[kid] = now.Add(k.minRefetch)
}

// withoutKID returns the keys to try for a token that names no kid.
func (s *keySnapshot) withoutKID(alg string) []*verificationKey {
	if len(s.keys) == 1 {
		return s.keys
	}
	var out []*verificationKey
	for _, key := range s.keys {
		if key.acceptsAlg(alg) {
			out = append(out, key)
		}
	}
	return out
}

// has reports whether the snapshot still holds key material with kid and fingerprint.
func (s *keySnapshot) has(kid string, fp *[32]byte) bool {
	for _, key := range s.byKID[kid] {
		if key.fingerprint == *fp {
			return true
		}
	}
	return false
}

var errRefetchLimited = errors.New("refetch rate limited")

// fetch fetches the JWKS unless a fetch is in flight (then it waits for it).
// seen == nil asks for the first fetch; otherwise kid was not in seen and
// this is an unknown-kid refetch, which returns errRefetchLimited when kid
// is remembered as unknown or the refetch interval is running (see keySet).
// A fetch that failed within failureBackoff is not retried: its error is
// returned.
func (k *keySet) fetch(ctx context.Context, seen *keySnapshot, kid string) error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return k.unavailable(errKeySetClosed)
	}
	if cur := k.snap.Load(); seen != nil && cur != seen {
		// Someone refreshed the set since the caller looked: look again.
		k.mu.Unlock()
		return nil
	} else if seen == nil && cur != nil {
		k.mu.Unlock()
		return nil
	}
	call := k.inflight
	if call == nil {
		now := k.now()
		if seen != nil {
			if until, ok := k.unknown[kid]; ok {
				if now.Before(until) {
					k.mu.Unlock()
					return errRefetchLimited
				}
				delete(k.unknown, kid)
			}
		}
		switch {
		case k.lastErr != nil && now.Sub(k.lastErrAt) < k.failureBackoff:
			// The tenant just failed: fail closed at once, with its error.
			err := k.lastErr
			k.mu.Unlock()
			return err
		case seen != nil && seen.gen == k.refetchGen && !k.refetchAt.IsZero() && now.Sub(k.refetchAt) < k.minRefetch:
			// This snapshot came from a refetch within the interval.
			k.mu.Unlock()
			return errRefetchLimited
		}
		call = &fetchCall{done: make(chan struct{})}
		k.inflight = call
		cache, err := k.cacheLocked()
		k.mu.Unlock()
		if err == nil {
			// The fetch runs on its own context so that one caller giving
			// up does not fail the others waiting for it; Close cancels it.
			_, err = cache.Refresh(context.WithoutCancel(ctx), k.url)
		}
		if err != nil {
			err = k.unavailable(err)
		}
		k.mu.Lock()
		call.err = err
		if err != nil {
			k.lastErr, k.lastErrAt = err, now
		} else {
			k.lastErr = nil
			if seen != nil {
				// Only unknown-kid refetches that worked start the interval.
				k.refetchAt = now
				if s := k.snap.Load(); s != nil {
					k.refetchGen = s.gen
				}
			}
		}
		k.inflight = nil
		k.mu.Unlock()
		close(call.done)
		return err
	}
	k.mu.Unlock()
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return k.unavailable(ctx.Err())
	}
}

// cacheLocked returns the jwk.Cache, creating it on first use. k.mu is held.
func (k *keySet) cacheLocked() (*jwk.Cache, error) {
	if k.cache != nil {
		return k.cache, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	cache := jwk.NewCache(ctx, jwk.WithRefreshWindow(time.Minute))
	client := &limitedClient{c: k.httpClient, ctx: ctx}
	if client.c.Timeout == 0 {
		c := *client.c
		c.Timeout = defaultFetchTimeout
		client.c = &c
	}
	err := cache.Register(k.url,
		jwk.WithHTTPClient(client),
		jwk.WithRefreshInterval(defaultRefreshInterval),
		jwk.WithPostFetcher(jwk.PostFetchFunc(func(_ string, set jwk.Set) (jwk.Set, error) {
			snap, err := k.buildSnapshot(set)
			if err != nil {
				return nil, err
			}
			k.snap.Store(snap)
			return set, nil
		})),
	)
	if err != nil {
		cancel()
		return nil, err
	}
	k.cache, k.cancel = cache, cancel
	return cache, nil
}

// buildSnapshot indexes the usable public keys of set.
func (k *keySet) buildSnapshot(set jwk.Set) (*keySnapshot, error) {
	s := &keySnapshot{byKID: make(map[string][]*verificationKey)}
	for i := 0; i < set.Len(); i++ {
		key, _ := set.Key(i)
		if key == nil {
			continue
		}
		if u := key.KeyUsage(); u != "" && u != "sig" {
			continue
		}
		var raw any
		if err := key.Raw(&raw); err != nil {
			continue
		}
		vk := &verificationKey{kid: key.KeyID()}
		if a := key.Algorithm(); a != nil {
			vk.alg = a.String()
		}
		h := sha256.New()
		switch pk := raw.(type) {
		case *rsa.PublicKey:
			vk.kty, vk.key = "RSA", pk
		case *rsa.PrivateKey:
			vk.kty, vk.key = "RSA", &pk.PublicKey
		case *ecdsa.PublicKey:
			vk.kty, vk.key = "EC", pk
		case *ecdsa.PrivateKey:
			vk.kty, vk.key = "EC", &pk.PublicKey
		case ed25519.PublicKey:
			vk.kty, vk.key = "OKP", pk
		default:
			continue // symmetric keys and anything unknown
		}
		switch pk := vk.key.(type) {
		case *rsa.PublicKey:
			h.Write(pk.N.Bytes())
			fmt.Fprintf(h, ".%d", pk.E)
		case *ecdsa.PublicKey:
			b, err := pk.Bytes()
			if err != nil {
				continue
			}
			h.Write(b)
		case ed25519.PublicKey:
			h.Write(pk)
		}
		h.Sum(vk.fingerprint[:0])
		s.keys = append(s.keys, vk)
		s.byKID[vk.kid] = append(s.byKID[vk.kid], vk)
	}
	if len(s.keys) == 0 {
		return nil, errors.New("JWKS holds no usable signing key")
	}
	s.gen = k.gen.Add(1)
	return s, nil
}

// unavailable wraps err as a *TenantError on the JWKS endpoint, which matches
// ErrTenantUnavailable.
func (k *keySet) unavailable(err error) error {
	var te *TenantError
	if errors.As(err, &te) {
		return err
	}
	return &TenantError{Endpoint: jwksEndpoint, Err: fmt.Errorf("fetching JWKS: %w", err)}
}

// limitedClient adapts *http.Client to jwk's HTTPClient: the request carries
// the key set's context (cancelled by Close), and the body is bounded.
type limitedClient struct {
	c   *http.Client
	ctx context.Context
}

func (l *limitedClient) Get(u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(l.ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := l.c.Do(req)
	if err != nil {
		return nil, err
	}
	res.Body = limitedBody{Reader: io.LimitReader(res.Body, maxJWKSBytes), Closer: res.Body}
	return res, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}
