package stepup

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"math"
	"math/big"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// The verification core shared by every kind of token stepup checks: ID
// tokens (verify.go), access tokens (api.go) and back-channel logout tokens
// (verify_logout.go). It splits a compact JWS, decodes its header, verifies
// its signature with the tenant's keys (jwks.go) or the client secret, and
// decodes the registered claims straight into typed fields. Each token kind
// then applies its own rules to those fields; none calls into another's file.
//
// The fast path allocates little on purpose: the signing input is hashed
// from a caller's stack buffer, the header and payload are decoded into that
// buffer and copied once into one string that every claim value without
// escapes shares, and the claims nobody asked for are validated but not
// built. No unsafe is used: the one copy it would save is well under 1% of
// an RSA verification. A header spelled exactly as one that verified before
// is neither decoded nor parsed again, and its candidate keys are reused
// while the key set is unchanged (jwsVerifier.known).

// Kinds of *TokenError. Each *TokenError matches ErrInvalidToken and its Kind.
var (
	ErrTokenMalformed       = errors.New("stepup: token malformed")
	ErrTokenAlgorithm       = errors.New("stepup: token signing algorithm not allowed")
	ErrTokenSignature       = errors.New("stepup: token signature invalid")
	ErrTokenUnknownKey      = errors.New("stepup: token signed by an unknown key")
	ErrTokenIssuer          = errors.New("stepup: token issuer mismatch")
	ErrTokenAudience        = errors.New("stepup: token audience mismatch")
	ErrTokenAuthorizedParty = errors.New("stepup: token authorized party (azp) mismatch")
	ErrTokenSubject         = errors.New("stepup: token subject missing")
	ErrTokenIssuedAt        = errors.New("stepup: token issued-at (iat) missing or in the future")
	ErrTokenExpired         = errors.New("stepup: token expired")
	ErrTokenNotYetValid     = errors.New("stepup: token not yet valid (nbf)")
	ErrTokenNonce           = errors.New("stepup: token nonce mismatch")
	ErrTokenAuthTime        = errors.New("stepup: token auth_time missing or too old")
	ErrTokenType            = errors.New("stepup: token type (typ) not acceptable")
)

// TokenError reports why an ID or access token was rejected. It matches
// ErrInvalidToken and its Kind (one of the ErrToken... sentinels). Its
// message never contains token content, so it is safe to log.
type TokenError struct {
	Kind   error  // an ErrToken... sentinel
	Claim  string // the claim or header parameter at fault, if any
	Detail string // what was wrong, without token content
	Err    error  // the underlying cause, if any
}

func (e *TokenError) Error() string {
	var b strings.Builder
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	} else {
		b.WriteString(ErrInvalidToken.Error())
	}
	if e.Claim != "" {
		b.WriteString(" (")
		b.WriteString(e.Claim)
		b.WriteString(")")
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Is makes a *TokenError match ErrInvalidToken and its Kind.
func (e *TokenError) Is(target error) bool {
	return target == ErrInvalidToken || (e.Kind != nil && target == e.Kind)
}

func (e *TokenError) Unwrap() error { return e.Err }

// tokenErr returns a TokenError of kind for claim (may be empty). It is
// kept out of line (as is badBase64), so that the verification path's error
// returns are calls, not allocations inlined between the instructions that
// run on every token.
//
//go:noinline
func tokenErr(kind error, claim, detail string) *TokenError {
	return &TokenError{Kind: kind, Claim: claim, Detail: detail}
}

// badBase64 is the error for a token part that is not strict base64url.
//
//go:noinline
func badBase64(part string, err error) *TokenError {
	return &TokenError{Kind: ErrTokenMalformed, Claim: part, Detail: "bad base64url", Err: err}
}

// jwtStackBytes is the scratch buffer a verification keeps on its stack: the
// token plus its decoded parts, enough for tokens up to about 2.3 KB (Auth0's
// are about 1 KB). Larger tokens (up to maxTokenBytes) use a heap buffer.
// Small on purpose: the stack is zeroed on every call and its cache lines
// are touched.
const jwtStackBytes = 4 << 10

// jwtSmallStackBytes is the smaller scratch buffer the access- and ID-token
// verifications use for tokens of up to jwtSmallTokenBytes: half the
// zeroing and half the cache lines of jwtStackBytes. A token of n bytes
// needs at most n + 3n/4 (itself and its decoded parts).
const (
	jwtSmallStackBytes = 2 << 10
	jwtSmallTokenBytes = jwtSmallStackBytes * 4 / 7
)

// maxSignatureBytes bounds a decoded signature: RSA up to 8192 bits.
const maxSignatureBytes = 1024

// maxTokenBytes bounds the size of a token we look at.
const maxTokenBytes = 64 << 10

// jwtBase64 decodes the parts of a token: base64url without padding, and
// strict, so that one token has one spelling (non-zero trailing bits are
// refused; verifyJWS refuses the line breaks the decoder skips).
var jwtBase64 = base64.RawURLEncoding.Strict()

// joseHeader is the part of a JWS header we read.
type joseHeader struct {
	Alg, Kid, Typ string
}

// jwsVerifier checks compact JWS signatures for one token kind.
type jwsVerifier struct {
	algs   []string // accepted header algs; never "none"
	keys   *keySet  // the tenant's keys; nil: only HS256 can verify
	secret []byte   // HS256 key; nil: HS256 never verifies

	// known holds the last few headers of tokens whose signature verified,
	// each with its exact base64url spelling: a tenant's tokens share one
	// per signing key, which is then not decoded and parsed again (the alg
	// and typ checks still run), and whose candidate keys are not looked up
	// again while the key set's snapshot is the same. Replaced round robin
	// (nextKnown).
	known     [4]atomic.Pointer[knownHeader]
	nextKnown atomic.Uint32
}

// knownHeader is a header that parseHeader accepted, its spelling, and the
// keys keySet.candidatesIn gave for its kid and alg.
type knownHeader struct {
	enc  string // the header's base64url, exactly as in the token
	h    joseHeader
	cand keyCandidates
}

// keyCandidates are the keys that may verify a header's signature in one
// snapshot of the key set (none for HS256: snap nil).
type keyCandidates struct {
	snap *keySnapshot
	keys []*verificationKey
}

// maxKnownHeaderBytes bounds the spelling of a header kept in known.
const maxKnownHeaderBytes = 512

// knownHeader returns the known header spelled exactly enc and its slot, or
// nil and -1.
func (v *jwsVerifier) knownHeader(enc string) (*knownHeader, int) {
	for k := range v.known {
		if kh := v.known[k].Load(); kh != nil && kh.enc == enc {
			return kh, k
		}
	}
	return nil, -1
}

// rememberHeader keeps h, spelled enc, with its candidate keys among the
// known headers, in slot (or, when -1, the next one): call it only once a
// token with this header verified. The strings are copied, so that the
// entry does not keep the token's memory.
func (v *jwsVerifier) rememberHeader(slot int, enc string, h joseHeader, cand keyCandidates) {
	if len(enc) > maxKnownHeaderBytes {
		return
	}
	kh := &knownHeader{enc: strings.Clone(enc), h: joseHeader{Alg: strings.Clone(h.Alg), Kid: strings.Clone(h.Kid), Typ: strings.Clone(h.Typ)}, cand: cand}
	if slot < 0 {
		slot = int(v.nextKnown.Add(1) % uint32(len(v.known)))
	}
	v.known[slot].Store(kh)
}

// pssOptions accept any salt length, as jwx (and our verifier before it)
// did: RFC 7518 §3.5 says the salt is as long as the hash, and a signer with
// another length proves the same key possession.
var pssOptions = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}

// verifyJWS splits raw, decodes its header, checks its alg against v.algs
// and its typ with typOK, verifies the signature, and returns the decoded
// payload (JSON, not yet parsed) and the key that verified it (nil for
// HS256). scratch is a buffer the caller owns (usually on its stack); it
// is used only during the call. Failures are *TokenError, or an error
// matching ErrTenantUnavailable when the keys cannot be fetched.
func (v *jwsVerifier) verifyJWS(ctx context.Context, raw string, typOK func(string) bool, typDetail string, scratch []byte) (string, *verificationKey, error) {
	if len(raw) > maxTokenBytes {
		return "", nil, tokenErr(ErrTokenMalformed, "", "token too large")
	}
	i := strings.IndexByte(raw, '.')
	if i < 0 {
		return "", nil, tokenErr(ErrTokenMalformed, "", "not a compact JWS")
	}
	j := strings.IndexByte(raw[i+1:], '.')
	if j < 0 {
		return "", nil, tokenErr(ErrTokenMalformed, "", "not a compact JWS")
	}
	j += i + 1
	if strings.IndexByte(raw[j+1:], '.') >= 0 {
		return "", nil, tokenErr(ErrTokenMalformed, "", "not a compact JWS (encrypted tokens are not supported)")
	}
	// The strict decoder refuses every byte outside base64url except the
	// line breaks it skips: refuse those here, so one token has one spelling.
	if strings.IndexByte(raw, '\n') >= 0 || strings.IndexByte(raw, '\r') >= 0 {
		return "", nil, tokenErr(ErrTokenMalformed, "", "line break in the token")
	}
	enc := jwtBase64
	sigLen := enc.DecodedLen(len(raw) - j - 1)
	if sigLen > maxSignatureBytes {
		return "", nil, tokenErr(ErrTokenSignature, "", "signature too long")
	}
	// A header spelled exactly as one that verified before is not decoded
	// again.
	known, slot := v.knownHeader(raw[:i])
	// Layout of scratch: the token, then its decoded header (unless known)
	// and payload (adjacent, so that one string holds both), then its
	// signature.
	need := len(raw) + enc.DecodedLen(j-i-1) + sigLen
	if known == nil {
		need += enc.DecodedLen(i)
	}
	if need > len(scratch) {
		scratch = make([]byte, need)
	}
	tok := scratch[:copy(scratch, raw)]
	in := tok[:j]
	out := scratch[len(tok):]
	hn := 0
	var err error
	if known == nil {
		if hn, err = enc.Decode(out, in[:i]); err != nil {
			return "", nil, badBase64("header", err)
		}
	}
	pn, err := enc.Decode(out[hn:], in[i+1:])
	if err != nil {
		return "", nil, badBase64("payload", err)
	}
	sn, err := enc.Decode(out[hn+pn:], tok[j+1:])
	if err != nil {
		return "", nil, badBase64("signature", err)
	}
	sig := out[hn+pn : hn+pn+sn]
	decoded := string(out[:hn+pn])
	var h joseHeader
	if known != nil {
		h = known.h
	} else if h, err = parseHeader(decoded[:hn]); err != nil {
		return "", nil, err
	}
	if !slices.Contains(v.algs, h.Alg) {
		return "", nil, tokenErr(ErrTokenAlgorithm, "alg", "algorithm not in the allowed list")
	}
	if h.Typ != "" && !typOK(h.Typ) {
		return "", nil, tokenErr(ErrTokenType, "typ", typDetail)
	}
	// The known header's keys, while its snapshot is the current one.
	var cand keyCandidates
	if known != nil && known.cand.snap != nil && v.keys != nil && known.cand.snap == v.keys.snap.Load() {
		cand = known.cand
	}
	key, cand, err := v.verifySignature(ctx, h, in, sig, cand)
	if err != nil {
		return "", nil, err
	}
	if known == nil || known.cand.snap != cand.snap {
		v.rememberHeader(slot, raw[:i], h, cand)
	}
	return decoded[hn:], key, nil
}

// parseHeader decodes a JWS header and refuses what we never accept: crit
// extensions, a missing alg, and "none".
func parseHeader(s string) (joseHeader, error) {
	h, hasCrit, err := decodeJOSEHeader(s)
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) {
			return h, te
		}
		return h, &TokenError{Kind: ErrTokenMalformed, Claim: "header", Detail: "not a JSON object", Err: err}
	}
	if hasCrit {
		return h, tokenErr(ErrTokenMalformed, "crit", "critical header extensions are not supported")
	}
	if h.Alg == "" {
		return h, tokenErr(ErrTokenAlgorithm, "alg", "missing")
	}
	if strings.EqualFold(h.Alg, "none") {
		return h, tokenErr(ErrTokenAlgorithm, "alg", `"none" is never accepted`)
	}
	return h, nil
}

// jwsAlg describes a JWS signature algorithm we verify.
type jwsAlg struct {
	hash crypto.Hash
	kind byte // 'R' RSASSA-PKCS1-v1_5, 'P' RSASSA-PSS, 'E' ECDSA, 'H' HMAC
	size int  // ECDSA: bytes of each of r and s
}

func lookupAlg(alg string) (jwsAlg, bool) {
	switch alg {
	case "RS256":
		return jwsAlg{crypto.SHA256, 'R', 0}, true
	case "RS384":
		return jwsAlg{crypto.SHA384, 'R', 0}, true
	case "RS512":
		return jwsAlg{crypto.SHA512, 'R', 0}, true
	case "PS256":
		return jwsAlg{crypto.SHA256, 'P', 0}, true
	case "PS384":
		return jwsAlg{crypto.SHA384, 'P', 0}, true
	case "PS512":
		return jwsAlg{crypto.SHA512, 'P', 0}, true
	case "ES256":
		return jwsAlg{crypto.SHA256, 'E', 32}, true
	case "ES384":
		return jwsAlg{crypto.SHA384, 'E', 48}, true
	case "ES512":
		return jwsAlg{crypto.SHA512, 'E', 66}, true
	case "HS256":
		return jwsAlg{crypto.SHA256, 'H', 0}, true
	}
	return jwsAlg{}, false
}

// isRSAJWSAlg reports whether alg is an RSA JWS algorithm (the only kind
// access tokens accept).
func isRSAJWSAlg(alg string) bool {
	a, ok := lookupAlg(alg)
	return ok && (a.kind == 'R' || a.kind == 'P')
}

// verifySignature verifies sig over in with the candidate keys for h (or
// the client secret for HS256), with crypto/rsa, crypto/ecdsa and crypto/hmac.
// cand, unless its snap is nil, are h's candidate keys in the key set's
// current snapshot (they are looked up otherwise); it returns the keys it
// tried.
func (v *jwsVerifier) verifySignature(ctx context.Context, h joseHeader, in, sig []byte, cand keyCandidates) (*verificationKey, keyCandidates, error) {
	a, ok := lookupAlg(h.Alg)
	if !ok {
		return nil, cand, tokenErr(ErrTokenAlgorithm, "alg", "algorithm not supported")
	}

	if a.kind == 'H' {
		if len(v.secret) == 0 {
			return nil, cand, tokenErr(ErrTokenAlgorithm, "alg", "HS256 needs the client secret")
		}
		if !verifyHMAC(v.secret, in, sig) {
			return nil, cand, tokenErr(ErrTokenSignature, "", "HS256 signature does not verify with the client secret")
		}
		return nil, keyCandidates{}, nil
	}

	var dbuf [64]byte
	var digest []byte
	switch a.hash {
	case crypto.SHA256:
		d := sha256.Sum256(in)
		digest = dbuf[:copy(dbuf[:], d[:])]
	case crypto.SHA384:
		d := sha512.Sum384(in)
		digest = dbuf[:copy(dbuf[:], d[:])]
	default:
		d := sha512.Sum512(in)
		digest = dbuf[:copy(dbuf[:], d[:])]
	}

	if v.keys == nil {
		return nil, cand, tokenErr(ErrTokenUnknownKey, "kid", "no key set configured")
	}
	if cand.snap == nil {
		keys, snap, err := v.keys.candidatesIn(ctx, h.Kid, h.Alg)
		if err != nil {
			return nil, cand, err
		}
		cand = keyCandidates{snap, keys}
	}
	tried := 0
	for _, key := range cand.keys {
		if !key.acceptsAlg(h.Alg) {
			continue
		}
		var err error
		switch pub := key.key.(type) {
		case *rsa.PublicKey:
			tried++
			if a.kind == 'P' {
				err = rsa.VerifyPSS(pub, a.hash, bytes.Clone(digest), sig, pssOptions) // a copy: VerifyPSS lets its hash escape
			} else {
				err = rsa.VerifyPKCS1v15(pub, a.hash, digest, sig)
			}
		case *ecdsa.PublicKey:
			tried++
			if a.kind != 'E' || !verifyECDSA(pub, a.size, digest, sig) {
				err = errECDSA
			}
		default:
			continue
		}
		if err == nil {
			return key, cand, nil
		}
	}
	if tried == 0 {
		return nil, cand, tokenErr(ErrTokenUnknownKey, "kid", "no key in the JWKS matches the token's kid and alg")
	}
	return nil, cand, tokenErr(ErrTokenSignature, "", "signature does not verify")
}

var errECDSA = errors.New("ECDSA verification failed")

// verifyHMAC checks an HS256 signature. It works on copies so that the
// caller's stack buffers do not escape through hash.Hash (an interface).
func verifyHMAC(secret, in, sig []byte) bool {
	m := hmac.New(sha256.New, secret)
	m.Write(bytes.Clone(in))
	return hmac.Equal(m.Sum(nil), bytes.Clone(sig))
}

// verifyECDSA checks a JWS ECDSA signature: r||s, each left-padded to the
// curve's size (RFC 7518 §3.4). It copies digest for the same reason as
// verifyHMAC.
func verifyECDSA(pub *ecdsa.PublicKey, size int, digest, sig []byte) bool {
	if len(sig) != 2*size || (pub.Curve.Params().BitSize+7)/8 != size {
		return false
	}
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	return ecdsa.Verify(pub, bytes.Clone(digest), r, s)
}

// numericDate is a decoded NumericDate claim.
type numericDate struct {
	t  time.Time
	ok bool // present and not null
}

// claimNames are the extra claim names an access-token Verifier reads: the
// authentication claims an Action copied under a namespace.
type claimNames struct {
	acr, amr, authTime string // "" when no namespace is set
}

// registeredClaims are the claims any of our token kinds reads, decoded
// straight from the payload. Strings without escapes share the payload's
// memory; string lists are carved out of the arena passed to decodeClaims.
type registeredClaims struct {
	iss, sub, azp, clientID, nonce, sid, acr, orgID, jti, scope string

	// email and name are the profile claims the session keeps; a value of
	// another type is ignored (it is no error).
	email, name string

	hasAzp, hasNonce, hasScope bool

	aud, amr, permissions, scopes []string
	iat, exp, nbf, authTime       numericDate

	// events is the raw JSON value of the events claim (logout tokens).
	events    string
	hasEvents bool

	// The namespaced authentication claims (claimNames), and whether each
	// member was present at all (even null).
	nsACR                      string
	nsAMR                      []string
	nsAuthTime                 numericDate
	hasNSACR, hasNSAMR, hasNSA bool
}

// payloadErr wraps a JSON error in the payload.
func payloadErr(err error) error {
	var te *TokenError
	if errors.As(err, &te) {
		return te
	}
	return &TokenError{Kind: ErrTokenMalformed, Claim: "payload", Detail: "not a valid JSON object", Err: err}
}

// maxClaimNamesOnStack is how many member names decodeClaimsJSON checks for
// repeats without allocating; beyond it, a map takes over.
const maxClaimNamesOnStack = 48

// decodeClaims decodes payload, which must be exactly one JSON object, into
// c. Members it does not read are validated (the same grammar as
// decodeJSONObject, so that a Claims map can always be built later) but not
// kept. A repeated member name is an error, as in decodeJSONObject. ns may be
// nil.
//
// Claim sets as Auth0 writes them take a fast path (decodeCompactClaims);
// any other starts over on the general decoder.
func decodeClaims(payload string, c *registeredClaims, arena []string, ns *claimNames) error {
	a := arena
	if decodeCompactClaims(payload, c, &a, ns) {
		return nil
	}
	*c = registeredClaims{}
	return decodeClaimsJSON(payload, c, arena, ns)
}

// decodeClaimsJSON is decodeClaims on the general decoder.
func decodeClaimsJSON(payload string, c *registeredClaims, arena []string, ns *claimNames) error {
	d := jsonDecoder{s: payload, depth: 1}
	end, err := d.openObject()
	if err != nil {
		return payloadErr(err)
	}
	var seen uint32
	var names [maxClaimNamesOnStack]string
	n := 0
	var spill map[string]struct{}
	for !end {
		k, err := d.memberName()
		if err != nil {
			return payloadErr(err)
		}
		slot, err := c.member(&d, k, &arena, ns)
		if err != nil {
			return payloadErr(err)
		}
		// Repeated names: the claims we read by a bit each, the others
		// by comparison with the names seen so far (few, in practice).
		if slot >= 0 {
			if seen&(1<<slot) != 0 {
				return payloadErr(errJSONDuplicate)
			}
			seen |= 1 << slot
		} else {
			if spill == nil {
				for _, s := range names[:n] {
					if s == k {
						return payloadErr(errJSONDuplicate)
					}
				}
				if n < len(names) {
					names[n] = k
					n++
				} else {
					spill = make(map[string]struct{}, 2*len(names))
					for _, s := range names {
						spill[s] = struct{}{}
					}
				}
			}
			if spill != nil {
				if _, dup := spill[k]; dup {
					return payloadErr(errJSONDuplicate)
				}
				spill[k] = struct{}{}
			}
		}
		if end, err = d.next('}'); err != nil {
			return payloadErr(err)
		}
	}
	if err := d.finish(); err != nil {
		return payloadErr(err)
	}
	return nil
}

// The claims decodeClaims reads, each with its slot: a bit in the
// repeated-name check.
const (
	slotIss = iota
	slotSub
	slotAzp
	slotClientID
	slotNonce
	slotSID
	slotACR
	slotOrgID
	slotJTI
	slotAud
	slotAMR
	slotPermissions
	slotScope
	slotIat
	slotExp
	slotNbf
	slotAuthTime
	slotEmail
	slotName
	slotEvents
	slotNSACR // the namespaced authentication claims (claimNames)
	slotNSAMR
	slotNSAuthTime
)

// claimSlotNames spells the registered claims' names, by slot.
var claimSlotNames = [...]string{
	slotIss:         "iss",
	slotSub:         "sub",
	slotAzp:         "azp",
	slotClientID:    "client_id",
	slotNonce:       "nonce",
	slotSID:         "sid",
	slotACR:         "acr",
	slotOrgID:       "org_id",
	slotJTI:         "jti",
	slotAud:         "aud",
	slotAMR:         "amr",
	slotPermissions: "permissions",
	slotScope:       "scope",
	slotIat:         "iat",
	slotExp:         "exp",
	slotNbf:         "nbf",
	slotAuthTime:    "auth_time",
	slotEmail:       "email",
	slotName:        "name",
	slotEvents:      "events",
}

// claimSlots maps claimHash of each name in claimSlotNames to its slot, -1
// where none. A collision is a mistake in claimHash, found by any test run:
// it panics here rather than leave a claim (nbf, say) unread.
var claimSlots = func() (t [64]int8) {
	for i := range t {
		t[i] = -1
	}
	for slot, name := range claimSlotNames {
		h := claimHash(name)
		if t[h] >= 0 {
			panic("stepup: claimHash maps " + name + " and " + claimSlotNames[t[h]] + " to one slot")
		}
		t[h] = int8(slot)
	}
	return t
}()

// claimHash is a perfect hash of the names in claimSlotNames (len(k) >= 2).
func claimHash(k string) int { return (int(k[0]) + 3*int(k[1]) + 12*len(k)) & 63 }

// claimSlot returns the slot of the registered claim named k, or -1.
func claimSlot(k string) int {
	if len(k) < 2 {
		return -1
	}
	slot := claimSlots[claimHash(k)]
	if slot < 0 || claimSlotNames[slot] != k {
		return -1
	}
	return int(slot)
}

// member decodes the value of member k at d.i (decodeClaimsJSON's). It
// returns the claim's slot (a bit for the repeated-name check) when it is
// one we read, -1 otherwise. The values it reads go to their fields through
// setString, setStrings and setTime, as the fast path's do.
func (c *registeredClaims) member(d *jsonDecoder, k string, arena *[]string, ns *claimNames) (int, error) {
	var err error
	slot := claimSlot(k)
	switch slot {
	case slotIss, slotSub, slotAzp, slotClientID, slotSID, slotACR, slotOrgID, slotJTI:
		err = c.stringClaim(d, k, slot, arena)
	case slotNonce:
		// Present at all, even null, counts for logout tokens (which must not have one).
		c.hasNonce = true
		err = c.stringClaim(d, k, slot, arena)
	case slotAud:
		if d.peek() == '"' {
			var s string
			if s, err = d.str(); err == nil {
				c.setString(slot, s, arena)
			}
		} else {
			err = c.stringsClaim(d, k, slot, arena)
		}
	case slotAMR, slotPermissions:
		err = c.stringsClaim(d, k, slot, arena)
	case slotScope:
		switch d.peek() {
		case '"':
			var s string
			if s, err = d.str(); err == nil {
				c.setString(slot, s, arena)
			}
		case '[':
			err = c.stringsClaim(d, k, slot, arena)
		case 'n':
			err = d.lit("null")
		default:
			err = tokenErr(ErrTokenMalformed, k, "must be a space-separated string")
		}
	case slotIat, slotExp, slotNbf, slotAuthTime:
		err = c.timeClaim(d, k, slot)
	case slotEmail, slotName:
		// A value of another type is ignored (see registeredClaims).
		var s string
		if s, err = d.lenientString(); err == nil {
			c.setString(slot, s, arena)
		}
	case slotEvents:
		start := d.i
		if err = d.skip(); err == nil {
			c.events, c.hasEvents = d.s[start:d.i], true
		}
	default:
		switch {
		case ns == nil || ns.acr == "":
			err = d.skip()
		case k == ns.acr:
			slot = slotNSACR
			c.hasNSACR = true
			err = c.stringClaim(d, k, slot, arena)
		case k == ns.amr:
			slot = slotNSAMR
			c.hasNSAMR = true
			err = c.stringsClaim(d, k, slot, arena)
		case k == ns.authTime:
			slot = slotNSAuthTime
			c.hasNSA = true
			err = c.timeClaim(d, k, slot)
		default:
			err = d.skip()
		}
	}
	return slot, err
}

// stringClaim decodes a string claim (null: absent) into slot.
func (c *registeredClaims) stringClaim(d *jsonDecoder, k string, slot int, arena *[]string) error {
	s, present, err := d.claimString(k)
	if present {
		c.setString(slot, s, arena)
	}
	return err
}

// stringsClaim decodes an array-of-strings claim (null: absent) into slot.
func (c *registeredClaims) stringsClaim(d *jsonDecoder, k string, slot int, arena *[]string) error {
	l, present, err := d.claimStrings(k, arena)
	if present {
		c.setStrings(slot, l)
	}
	return err
}

// timeClaim decodes a NumericDate claim (null: absent) into slot.
func (c *registeredClaims) timeClaim(d *jsonDecoder, k string, slot int) error {
	t, err := d.claimTime(k)
	if t.ok {
		c.setTime(slot, t)
	}
	return err
}

// setString, setStrings and setTime are where both decoders put the claims
// they read: the one mapping of slots to fields. Each reports false for a
// slot whose claim is not of its kind (the fast path then declines; the
// general decoder never asks).

// setString sets the claim in slot to the string v.
func (c *registeredClaims) setString(slot int, v string, arena *[]string) bool {
	switch slot {
	case slotIss:
		c.iss = v
	case slotSub:
		c.sub = v
	case slotAzp:
		c.azp, c.hasAzp = v, true
	case slotClientID:
		c.clientID = v
	case slotNonce:
		c.nonce, c.hasNonce = v, true
	case slotSID:
		c.sid = v
	case slotACR:
		c.acr = v
	case slotOrgID:
		c.orgID = v
	case slotJTI:
		c.jti = v
	case slotAud:
		c.aud = appendArena(arena, v)
	case slotScope:
		c.scope, c.hasScope = v, true
		c.scopes = splitScope(v, arena)
	case slotEmail:
		c.email = v
	case slotName:
		c.name = v
	case slotNSACR:
		c.nsACR, c.hasNSACR = v, true
	default:
		return false
	}
	return true
}

// setStrings sets the claim in slot to the list l.
func (c *registeredClaims) setStrings(slot int, l []string) bool {
	switch slot {
	case slotAud:
		c.aud = l
	case slotAMR:
		c.amr = l
	case slotPermissions:
		c.permissions = l
	case slotScope:
		c.scopes, c.hasScope = l, true
	case slotNSAMR:
		c.nsAMR, c.hasNSAMR = l, true
	default:
		return false
	}
	return true
}

// setTime sets the NumericDate claim in slot to t.
func (c *registeredClaims) setTime(slot int, t numericDate) bool {
	switch slot {
	case slotIat:
		c.iat = t
	case slotExp:
		c.exp = t
	case slotNbf:
		c.nbf = t
	case slotAuthTime:
		c.authTime = t
	case slotNSAuthTime:
		c.nsAuthTime, c.hasNSA = t, true
	default:
		return false
	}
	return true
}

// appendArena appends s to the arena and returns it as a one-element list
// whose capacity ends at its length (appending to it never overwrites the
// arena).
func appendArena(arena *[]string, s string) []string {
	start := len(*arena)
	*arena = append(*arena, s)
	return (*arena)[start : start+1 : start+1]
}

// splitScope splits a space-separated scope claim into arena (as
// strings.Fields does for ASCII white space).
func splitScope(s string, arena *[]string) []string {
	start := len(*arena)
	for i := 0; i < len(s); {
		for i < len(s) && isScopeSpace(s[i]) {
			i++
		}
		j := i
		for j < len(s) && (s[j] > ' ' || !isScopeSpace(s[j])) { // every space is <= ' '
			j++
		}
		if j > i {
			*arena = append(*arena, s[i:j])
		}
		i = j
	}
	if len(*arena) == start {
		return nil
	}
	return (*arena)[start:len(*arena):len(*arena)]
}

// isScopeSpace reports whether b is ASCII white space: ' ', or '\t', '\n',
// '\v', '\f', '\r' (9 to 13).
func isScopeSpace(b byte) bool {
	return b == ' ' || b-'\t' <= '\r'-'\t'
}

// peek returns the byte at d.i, or 0 at the end.
func (d *jsonDecoder) peek() byte {
	if d.i < len(d.s) {
		return d.s[d.i]
	}
	return 0
}

// claimString decodes a string claim: null is absent, another type is
// ErrTokenMalformed.
func (d *jsonDecoder) claimString(name string) (string, bool, error) {
	switch d.peek() {
	case '"':
		s, err := d.str()
		return s, err == nil, err
	case 'n':
		return "", false, d.lit("null")
	}
	return "", false, tokenErr(ErrTokenMalformed, name, "must be a string")
}

// lenientString decodes a string, or skips a value of another type ("").
func (d *jsonDecoder) lenientString() (string, error) {
	if d.peek() == '"' {
		return d.str()
	}
	return "", d.skip()
}

// claimStrings decodes an array of strings into arena: null is absent.
func (d *jsonDecoder) claimStrings(name string, arena *[]string) ([]string, bool, error) {
	switch d.peek() {
	case 'n':
		return nil, false, d.lit("null")
	case '[':
	default:
		return nil, false, tokenErr(ErrTokenMalformed, name, "must be an array of strings")
	}
	if d.depth++; d.depth > maxJSONDepth {
		return nil, false, errJSONDepth
	}
	d.i++
	start := len(*arena)
	d.ws()
	if d.peek() == ']' {
		d.i++
		d.depth--
		return []string{}, true, nil
	}
	for {
		d.ws()
		if d.peek() != '"' {
			if d.peek() == 0 {
				return nil, false, errJSONSyntax
			}
			return nil, false, tokenErr(ErrTokenMalformed, name, "must be an array of strings")
		}
		s, err := d.str()
		if err != nil {
			return nil, false, err
		}
		*arena = append(*arena, s)
		end, err := d.next(']')
		if err != nil {
			return nil, false, err
		}
		if end {
			d.depth--
			return (*arena)[start:len(*arena):len(*arena)], true, nil
		}
	}
}

// claimTime decodes a NumericDate claim: null is absent.
func (d *jsonDecoder) claimTime(name string) (numericDate, error) {
	c := d.peek()
	if c == 'n' {
		return numericDate{}, d.lit("null")
	}
	if c != '-' && (c < '0' || c > '9') {
		return numericDate{}, tokenErr(ErrTokenMalformed, name, "must be a number of seconds since 1970")
	}
	f, err := d.float()
	if err != nil {
		return numericDate{}, err
	}
	if math.IsNaN(f) || f < 0 || f > 1e11 {
		return numericDate{}, tokenErr(ErrTokenMalformed, name, "must be a number of seconds since 1970")
	}
	sec, frac := math.Modf(f)
	return numericDate{t: time.Unix(int64(sec), int64(frac*1e9)), ok: true}, nil
}

// A claimProblem is a failed check of the registered claims, as an index
// into claimProblems (none: 0). The checks return one instead of an error,
// so that the verification's common path, where every check passes, holds
// no error construction between its instructions; the caller turns the
// first problem into its *TokenError with err.
type claimProblem uint8

const (
	noClaimProblem claimProblem = iota
	problemIssuer
	problemAudienceAPI
	problemAudienceClient
	problemExpMissing
	problemExpired
	problemIatMissing
	problemIatFuture
	problemNotYetValid
	problemSubject
	problemAuthTimeFuture
	numClaimProblems
)

// claimProblems describes each claimProblem as its TokenError.
var claimProblems = [numClaimProblems]struct {
	kind          error
	claim, detail string
}{
	problemIssuer:         {ErrTokenIssuer, "iss", "issuer missing or not the tenant's"},
	problemAudienceAPI:    {ErrTokenAudience, "aud", "audience missing or does not contain this API"},
	problemAudienceClient: {ErrTokenAudience, "aud", "audience missing or does not contain the client id"},
	problemExpMissing:     {ErrTokenExpired, "exp", "exp missing"},
	problemExpired:        {ErrTokenExpired, "exp", "token expired"},
	problemIatMissing:     {ErrTokenIssuedAt, "iat", "iat missing"},
	problemIatFuture:      {ErrTokenIssuedAt, "iat", "issued in the future"},
	problemNotYetValid:    {ErrTokenNotYetValid, "nbf", "not valid yet"},
	problemSubject:        {ErrTokenSubject, "sub", "sub missing or empty"},
	problemAuthTimeFuture: {ErrTokenAuthTime, "auth_time", "auth_time in the future"},
}

// err is p's *TokenError. Out of line: see claimProblem. Called for
// noClaimProblem (a caller's mistake), it still fails closed.
//
//go:noinline
func (p claimProblem) err() error {
	if p == noClaimProblem || p >= numClaimProblems {
		return tokenErr(ErrTokenMalformed, "", "claims check failed")
	}
	e := &claimProblems[p]
	return tokenErr(e.kind, e.claim, e.detail)
}

// checkTimes checks exp (required), iat (required when iatRequired; never in
// the future) and nbf (optional) against now with leeway.
func (c *registeredClaims) checkTimes(now time.Time, leeway time.Duration, iatRequired bool) claimProblem {
	if !c.exp.ok {
		return problemExpMissing
	}
	if !now.Before(c.exp.t.Add(leeway)) {
		return problemExpired
	}
	return c.checkIssuedAt(now, leeway, iatRequired)
}

// checkIssuedAt checks iat and nbf: iat is never in the future.
func (c *registeredClaims) checkIssuedAt(now time.Time, leeway time.Duration, iatRequired bool) claimProblem {
	if !c.iat.ok && iatRequired {
		return problemIatMissing
	}
	if c.iat.ok && c.iat.t.After(now.Add(leeway)) {
		return problemIatFuture
	}
	if c.nbf.ok && c.nbf.t.After(now.Add(leeway)) {
		return problemNotYetValid
	}
	return noClaimProblem
}

// checkIssuer checks that iss is exactly issuer.
func (c *registeredClaims) checkIssuer(issuer string) claimProblem {
	if c.iss != issuer {
		return problemIssuer
	}
	return noClaimProblem
}

// checkAudience checks that aud contains want; missing says what want is
// (problemAudienceAPI or problemAudienceClient).
func (c *registeredClaims) checkAudience(want string, missing claimProblem) claimProblem {
	for _, a := range c.aud {
		if a == want {
			return noClaimProblem
		}
	}
	return missing
}

// checkSubject checks that sub is a non-empty string.
func (c *registeredClaims) checkSubject() claimProblem {
	if c.sub == "" {
		return problemSubject
	}
	return noClaimProblem
}
