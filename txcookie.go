package stepup

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The pending authorization travels with the browser, not in the Store: an
// anonymous visitor who is sent to the tenant costs the Store nothing (no
// record to keep, nothing a flood of page loads can fill or evict), and the
// transaction can only be completed by the browser that holds it.
//
// One cookie per transaction, so that logins started in several tabs all
// stay valid:
//
//	name:  [__Host-]<Config.Cookie.Transaction>_<8 characters of SHA-256(state)>
//	value: <expiry, Unix seconds, decimal>.<base64url(seal(payload))>
//
// The seal (the Client's key ring, AES-256-GCM) authenticates the state and
// the expiry as additional data, so a cookie opens only for the callback of
// its own state and its visible expiry cannot be moved. The visible expiry
// lets the middleware drop the oldest cookies without opening them.

// MaxTransactionCookies is how many transaction cookies (logins in progress,
// one per tab) a browser is asked to keep: starting one more drops the
// oldest, whose callback then fails with ErrTransactionNotFound.
const MaxTransactionCookies = 4

const (
	// maxTxCookieValue bounds one transaction cookie's value; browsers keep
	// at least 4096 bytes of name and value.
	maxTxCookieValue = 3800
	// maxTxCookiesTotal bounds the values of all transaction cookies a
	// browser is asked to keep, so that they never push its Cookie header
	// past a proxy's limit (nginx: 8 KB per header line by default).
	maxTxCookiesTotal = 6144
	// maxTxCookieDrops bounds the Set-Cookie lines one answer spends on
	// dropping old or malformed transaction cookies.
	maxTxCookieDrops = 8
	txCookieIDLen    = 8
	txPayloadVersion = 1
	txRawLen         = 32 // nonce and PKCE verifier: 256 random bits each
)

// txRecord is a pending authorization: what the callback needs to complete
// it, exactly as AuthorizeURL sent it.
type txRecord struct {
	Nonce    [txRawLen]byte // sent as base64url (randomToken form)
	Verifier [txRawLen]byte // PKCE verifier, base64url (as oauth2.GenerateVerifier)
	Issuer   string
	Policy   Policy // the policy sent (already adapted to the connection)
	// MaxAge is the max_age sent, in seconds; -1 when none was.
	MaxAge     int64
	Connection string
	ReturnTo   string
	Audience   string
	Org        string // the organization sent ("" none): flag 2, then a str after the audience
	Silent     bool
	// Expires (Unix seconds) is not in the payload: it is the cookie value's
	// visible prefix, authenticated as additional data.
	Expires int64
}

func (r *txRecord) nonce() string    { return base64.RawURLEncoding.EncodeToString(r.Nonce[:]) }
func (r *txRecord) verifier() string { return base64.RawURLEncoding.EncodeToString(r.Verifier[:]) }

// Bounds of the payload's fields when decoding (what authorizeURL accepts is
// within them).
const (
	txMaxList   = 32
	txMaxString = uint64(maxReturnToBytes) // a return path with its step-up marker (checkReturnTo)
)

// encodeTx writes the payload: a small versioned binary encoding (a JSON
// record of the same content was ~3 KB with its base64 and field names; this
// is ~150 bytes for a step-up):
//
//	version 1 | flags (1: silent, 2: organization) | nonce 32 | verifier 32 | uvarint max_age+1 (0: none)
//	| str policy name | list ACR | list AMR | uvarint policy max age (ns) | list scopes
//	| str issuer | str connection | str return path | str audience [| str organization (flag 2)]
//
// where str is a uvarint length and the bytes, and list a uvarint count and
// that many str.
func encodeTx(r *txRecord) []byte { return appendTx(nil, r) }

// appendTx appends the payload encodeTx makes to b.
func appendTx(b []byte, r *txRecord) []byte {
	var flags byte
	if r.Silent {
		flags |= 1
	}
	if r.Org != "" {
		flags |= 2
	}
	b = append(b, txPayloadVersion, flags)
	b = append(b, r.Nonce[:]...)
	b = append(b, r.Verifier[:]...)
	b = binary.AppendUvarint(b, uint64(r.MaxAge+1))
	b = appendTxString(b, r.Policy.Name)
	b = appendTxList(b, r.Policy.ACR)
	b = appendTxList(b, r.Policy.AMR)
	b = binary.AppendUvarint(b, uint64(r.Policy.MaxAge))
	b = appendTxList(b, r.Policy.Scopes)
	for _, s := range []string{r.Issuer, r.Connection, r.ReturnTo, r.Audience} {
		b = appendTxString(b, s)
	}
	if r.Org != "" {
		b = appendTxString(b, r.Org)
	}
	return b
}

func appendTxString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTxList(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = appendTxString(b, s)
	}
	return b
}

// errCorruptTx: a transaction payload that opened (so the Client sealed it)
// but does not decode: a payload of another version, or a bug.
var errCorruptTx = errors.New("stepup: transaction cookie is corrupt or of an unknown version")

// txReader reads the payload, failing once and for all at the first bad byte.
type txReader struct {
	b   []byte
	err error
}

func (d *txReader) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errCorruptTx, what)
	}
}

func (d *txReader) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || (n > 1 && d.b[n-1] == 0) { // overflow, or not the shortest form: one encoding per record
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *txReader) str(what string) string {
	n := d.uvarint(what)
	if d.err != nil {
		return ""
	}
	if n > uint64(txMaxString) || n > uint64(len(d.b)) {
		d.fail(what)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	if !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\r\n") {
		d.fail(what)
		return ""
	}
	return s
}

func (d *txReader) list(what string) []string {
	n := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if n > txMaxList {
		d.fail(what)
		return nil
	}
	if n == 0 {
		return nil
	}
	l := make([]string, 0, n)
	for range n {
		s := d.str(what)
		if s == "" {
			d.fail(what)
		}
		if d.err != nil {
			return nil
		}
		l = append(l, s)
	}
	return l
}

// decodeTx reads a payload made by encodeTx. It is a parser of input that
// went through the browser: the seal makes a forged payload fail before
// this, but the decoder still trusts nothing (FuzzDecodeTx).
func decodeTx(data []byte) (*txRecord, error) {
	if len(data) < 2+2*txRawLen {
		return nil, fmt.Errorf("%w: too short", errCorruptTx)
	}
	if data[0] != txPayloadVersion {
		return nil, fmt.Errorf("%w: version %d", errCorruptTx, data[0])
	}
	flags := data[1]
	if flags&^3 != 0 {
		return nil, fmt.Errorf("%w: flags", errCorruptTx)
	}
	r := &txRecord{Silent: flags&1 != 0}
	copy(r.Nonce[:], data[2:])
	copy(r.Verifier[:], data[2+txRawLen:])
	d := &txReader{b: data[2+2*txRawLen:]}
	ma := d.uvarint("max_age")
	if ma > math.MaxInt64/uint64(time.Second) {
		d.fail("max_age")
	}
	r.MaxAge = int64(ma) - 1
	r.Policy.Name = d.str("policy name")
	r.Policy.ACR = d.list("policy ACR")
	r.Policy.AMR = d.list("policy AMR")
	pm := d.uvarint("policy max age")
	if pm > math.MaxInt64 {
		d.fail("policy max age")
	}
	r.Policy.MaxAge = time.Duration(pm)
	r.Policy.Scopes = d.list("policy scopes")
	r.Issuer = d.str("issuer")
	r.Connection = d.str("connection")
	r.ReturnTo = d.str("return path")
	r.Audience = d.str("audience")
	if flags&2 != 0 {
		r.Org = d.str("organization")
		if d.err == nil && checkName(r.Org, maxOrganizationLen, "-_") != nil {
			d.fail("organization")
		}
	}
	switch {
	case d.err != nil:
		return nil, d.err
	case len(d.b) != 0:
		return nil, fmt.Errorf("%w: trailing bytes", errCorruptTx)
	case r.Issuer == "":
		return nil, fmt.Errorf("%w: issuer", errCorruptTx)
	case r.Connection != "" && checkConnection(r.Connection) != nil:
		return nil, fmt.Errorf("%w: connection", errCorruptTx)
	case checkReturnTo(r.ReturnTo) != nil:
		return nil, fmt.Errorf("%w: return path", errCorruptTx)
	}
	return r, nil
}

// appendTxAAD appends the additional data that binds a sealed transaction
// to its state and expiry.
func appendTxAAD(b []byte, state, exp string) []byte {
	b = append(b, "stepup/tx/v1\x00"...)
	b = append(b, state...)
	b = append(b, 0)
	return append(b, exp...)
}

// sealTx makes the transaction cookie's value for state. It is on the path
// of every redirect to the tenant: the payload, the additional data and the
// base64 are built in buffers on the stack, and the value is the one string
// allocated here besides the seal's own blob.
func (c *Client) sealTx(state string, r *txRecord) string {
	var expBuf [20]byte
	exp := strconv.AppendInt(expBuf[:0], r.Expires, 10)
	// The AEAD is an interface: what it is given escapes, so the payload
	// and the additional data share one pooled buffer.
	bp := scratch.Get().(*[]byte)
	pt := appendTx((*bp)[:0], r)
	aad := appendTxAAD(pt[len(pt):], state, string(exp))
	blob := c.ring.seal(pt, aad)
	if cap(aad) <= 8192 {
		*bp = aad[:0:cap(aad)]
		scratch.Put(bp)
	}
	var outBuf [1024]byte
	out := append(outBuf[:0], exp...)
	out = append(out, '.')
	return string(base64.RawURLEncoding.AppendEncode(out, blob))
}

// scratch holds buffers for the hot path of AuthorizeURL (the query and
// the transaction's payload), each back in the pool once its content is
// copied out.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// txCookieExpiry reads the visible expiry of a transaction cookie's value
// (not authenticated until openTx): ok is false for a malformed value.
func txCookieExpiry(value string) (exp int64, sealed string, ok bool) {
	e, sealed, found := strings.Cut(value, ".")
	if !found || len(e) == 0 || len(e) > 19 || len(value) > maxTxCookieValue {
		return 0, "", false
	}
	for i := 0; i < len(e); i++ {
		if e[i] < '0' || e[i] > '9' {
			return 0, "", false
		}
	}
	exp, err := strconv.ParseInt(e, 10, 64)
	if err != nil || (len(e) > 1 && e[0] == '0') {
		return 0, "", false
	}
	return exp, sealed, true
}

// openTx opens the transaction cookie value for state: ErrTransactionNotFound
// for a value that is not a transaction cookie at all, ErrStateMismatch for
// one that does not open for this state (another transaction's, tampered, or
// sealed by a key the ring no longer has).
func (c *Client) openTx(state, value string) (*txRecord, error) {
	exp, sealed, ok := txCookieExpiry(value)
	if !ok {
		return nil, fmt.Errorf("%w: malformed transaction cookie", ErrTransactionNotFound)
	}
	blob, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed transaction cookie", ErrTransactionNotFound)
	}
	pt, err := c.ring.open(blob, appendTxAAD(nil, state, value[:strings.IndexByte(value, '.')]))
	if err != nil {
		return nil, fmt.Errorf("%w: the transaction cookie is not this state's: %w", ErrStateMismatch, err)
	}
	r, err := decodeTx(pt)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTransactionNotFound, err)
	}
	r.Expires = exp
	return r, nil
}

// TransactionCookieName is the name of the cookie that carries the
// transaction of state (see AuthorizeRequest.Cookie): a hand-written
// callback reads it and gives its value to Exchange.
func (c *Client) TransactionCookieName(state string) string {
	const label = "stepup tx cookie\x00"
	var in [len(label) + 64]byte
	h := sha256.Sum256(append(append(in[:0], label...), state...))
	var name [64]byte
	n := append(name[:0], c.txCookiePrefix()...)
	return string(base64.RawURLEncoding.AppendEncode(n, h[:6]))
}

// txCookiePrefix is what every transaction cookie's name starts with:
// "[__Host-]<Config.Cookie.Transaction>_".
func (c *Client) txCookiePrefix() string {
	if c.secure {
		return "__Host-" + c.cfg.Cookie.Transaction + "_"
	}
	return c.cfg.Cookie.Transaction + "_"
}

// transactionFromRequest returns the value of r's transaction cookie for
// state, "" when it has none.
func (c *Client) transactionFromRequest(r *http.Request, state string) string {
	if !isRandomToken(state) {
		return ""
	}
	ck, err := r.Cookie(c.TransactionCookieName(state))
	if err != nil {
		return ""
	}
	return ck.Value
}

// ClearTransactionCookie expires the transaction cookie of state; the
// callback sends it once the transaction is spent.
func (c *Client) ClearTransactionCookie(state string) *http.Cookie {
	return c.clearTxCookie(c.TransactionCookieName(state))
}

func (c *Client) txCookie(name, value string) http.Cookie {
	return http.Cookie{Name: name, Value: value, Path: "/", MaxAge: int(c.cfg.TransactionTTL / time.Second),
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode}
}

// clearTxCookie expires the transaction cookie called name.
func (c *Client) clearTxCookie(name string) *http.Cookie {
	ck := c.txCookie(name, "")
	ck.MaxAge = -1
	return &ck
}

// SetTransactionCookie sets ar's transaction cookie on w (ar.Cookie) and
// drops r's oldest transaction cookies, and any malformed or expired one, so
// that the browser keeps at most MaxTransactionCookies of them and at most
// 6 KB of their values. LoginHandler and the middleware call it; a
// hand-written start of a login should too.
func (c *Client) SetTransactionCookie(w http.ResponseWriter, r *http.Request, ar *AuthorizeRequest) {
	ck := ar.Cookie()
	type live struct {
		name string
		exp  int64
		size int
	}
	var (
		keep   []live
		drops  []string
		now    = c.now().Unix()
		prefix = c.txCookiePrefix()
		seen   = map[string]bool{ck.Name: true}
	)
	for _, old := range r.Cookies() {
		if !strings.HasPrefix(old.Name, prefix) || seen[old.Name] {
			continue
		}
		seen[old.Name] = true
		exp, _, ok := txCookieExpiry(old.Value)
		if !ok || exp <= now || len(old.Name) != len(prefix)+txCookieIDLen {
			drops = append(drops, old.Name)
			continue
		}
		keep = append(keep, live{old.Name, exp, len(old.Value)})
	}
	// All transactions live TransactionTTL: the earliest expiry is the oldest.
	slices.SortFunc(keep, func(a, b live) int {
		return cmp.Or(cmp.Compare(a.exp, b.exp), strings.Compare(a.name, b.name))
	})
	total := len(ck.Value)
	for _, k := range keep {
		total += k.size
	}
	var oldest []string
	for len(keep) > 0 && (len(keep)+1 > MaxTransactionCookies || total > maxTxCookiesTotal) {
		oldest = append(oldest, keep[0].name)
		total -= keep[0].size
		keep = keep[1:]
	}
	// The oldest first: they are what keeps the bound; malformed ones are
	// only clutter.
	expire := append(oldest, drops...)
	for _, name := range expire[:min(len(expire), maxTxCookieDrops)] {
		http.SetCookie(w, c.clearTxCookie(name))
	}
	http.SetCookie(w, ck)
}
