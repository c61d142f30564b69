package stepup

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrorInsufficientUserAuthentication is RFC 9470's error code: the access
// token is valid but its authentication is not strong or recent enough.
const ErrorInsufficientUserAuthentication = "insufficient_user_authentication"

// Errors of ParseChallenge.
var (
	// ErrNoChallenge: the response has no Bearer challenge in WWW-Authenticate.
	ErrNoChallenge = errors.New("stepup: response has no Bearer challenge")
	// ErrMalformedChallenge matches every *ChallengeError.
	ErrMalformedChallenge = errors.New("stepup: malformed WWW-Authenticate challenge")
)

// ChallengeError reports a WWW-Authenticate header that could not be parsed.
// It matches ErrMalformedChallenge.
type ChallengeError struct {
	Detail string
	Offset int // byte offset in the header value
}

func (e *ChallengeError) Error() string {
	return fmt.Sprintf("%s: %s at byte %d", ErrMalformedChallenge.Error(), e.Detail, e.Offset)
}

// Is makes a *ChallengeError match ErrMalformedChallenge.
func (e *ChallengeError) Is(target error) bool { return target == ErrMalformedChallenge }

// Challenge is an RFC 6750 / RFC 9470 Bearer challenge: what a resource
// server answers, in WWW-Authenticate, to a request it will not serve.
type Challenge struct {
	Scheme           string // "Bearer"
	Error            string // e.g. "invalid_token", "insufficient_scope", "insufficient_user_authentication"
	ErrorDescription string
	// ACRValues are the acceptable authentication context classes, in order
	// of preference (acr_values, space-separated).
	ACRValues []string
	// MaxAge is the allowable elapsed time since the last authentication
	// (max_age), when HasMaxAge.
	MaxAge    time.Duration
	HasMaxAge bool
	Scope     []string // scope, space-separated
	// Params holds every auth-param, names in lower case (parsed), or extra
	// params to write, such as realm (writer; the fields above win).
	Params map[string]string
}

// StepUpChallenge returns the RFC 9470 challenge that asks for p's acr and max age.
func StepUpChallenge(p Policy) Challenge {
	c := Challenge{
		Scheme:           "Bearer",
		Error:            ErrorInsufficientUserAuthentication,
		ErrorDescription: "A different authentication level is required",
		ACRValues:        p.ACR,
	}
	if p.MaxAge > 0 {
		c.MaxAge, c.HasMaxAge = p.MaxAge, true
		c.ErrorDescription = "A more recent or stronger authentication is required"
	}
	return c
}

// StatusCode returns the HTTP status that goes with c: 403 for
// insufficient_scope, 400 for invalid_request, else 401.
func (c *Challenge) StatusCode() int {
	switch c.Error {
	case "insufficient_scope":
		return http.StatusForbidden
	case "invalid_request":
		return http.StatusBadRequest
	}
	return http.StatusUnauthorized
}

// String formats c as a WWW-Authenticate header value. Values are quoted;
// characters a quoted-string cannot hold are dropped.
func (c *Challenge) String() string {
	var b strings.Builder
	scheme := c.Scheme
	if scheme == "" || !isToken(scheme) {
		scheme = "Bearer"
	}
	b.WriteString(scheme)
	n := 0
	param := func(name, value string) {
		if n == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		n++
		b.WriteString(name)
		b.WriteString(`="`)
		for i := 0; i < len(value); i++ {
			ch := value[i]
			switch {
			case ch == '"' || ch == '\\':
				b.WriteByte('\\')
				b.WriteByte(ch)
			case ch >= 0x20 && ch < 0x7f:
				b.WriteByte(ch)
			}
		}
		b.WriteByte('"')
	}
	known := map[string]bool{"error": true, "error_description": true, "acr_values": true, "max_age": true, "scope": true}
	if v, ok := c.Params["realm"]; ok {
		param("realm", v) // RFC 6750: realm comes first when present
	}
	if c.Error != "" {
		param("error", c.Error)
	}
	if c.ErrorDescription != "" {
		param("error_description", c.ErrorDescription)
	}
	if len(c.ACRValues) > 0 {
		param("acr_values", strings.Join(c.ACRValues, " "))
	}
	if c.HasMaxAge {
		param("max_age", strconv.FormatInt(ceilSeconds(c.MaxAge), 10))
	}
	if len(c.Scope) > 0 {
		param("scope", strings.Join(c.Scope, " "))
	}
	names := make([]string, 0, len(c.Params))
	for k := range c.Params {
		if lk := strings.ToLower(k); !known[lk] && lk != "realm" && isToken(k) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		param(k, c.Params[k])
	}
	return b.String()
}

// WriteChallenge answers with c: it adds the WWW-Authenticate header and
// writes c's status (401, or 403 for insufficient_scope) and a small JSON
// body with the error code.
func WriteChallenge(w http.ResponseWriter, c Challenge) {
	h := w.Header()
	h.Add("WWW-Authenticate", c.String())
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(c.StatusCode())
	if c.Error == "" {
		_, _ = w.Write([]byte(`{"error":"unauthorized"}` + "\n"))
		return
	}
	body, _ := json.Marshal(struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description,omitempty"`
	}{c.Error, c.ErrorDescription})
	_, _ = w.Write(append(body, '\n'))
}

// freshAuthentication is the MaxAge of the Policy of a challenge with
// max_age=0 ("authenticate again now"): a Policy cannot say "now", and a
// login takes a few seconds between auth_time and the callback. One minute is
// the default leeway of the ID-token checks.
const freshAuthentication = time.Minute

// Policy returns the policy the challenge asks for: its acr_values and
// max_age. RFC 9470's max_age=0 (authenticate again now) becomes a MaxAge of
// one minute; AuthorizeOptions still sends max_age=0 unchanged.
func (c *Challenge) Policy() Policy {
	p := Policy{Name: "challenge"}
	if len(c.ACRValues) > 0 {
		p.ACR = append([]string(nil), c.ACRValues...)
	}
	if c.HasMaxAge {
		p.MaxAge = c.MaxAge
		if p.MaxAge <= 0 {
			p.MaxAge = freshAuthentication
		}
	}
	return p
}

// AuthorizeOptions returns the options of the authorization request that
// answers the challenge: its acr_values and max_age, unchanged (RFC 9470
// section 4), and the policy the new login must satisfy. Set Audience,
// ReturnTo and the like on the result as needed.
func (c *Challenge) AuthorizeOptions() AuthorizeOptions {
	opts := AuthorizeOptions{Policy: c.Policy()}
	if c.HasMaxAge {
		d := c.MaxAge
		opts.MaxAge = &d
	}
	return opts
}

// Limits of ParseChallenge: the work on a hostile header is bounded.
const (
	maxChallengeBytes  = 16 << 10 // all WWW-Authenticate values together
	maxChallenges      = 32       // per response
	maxChallengeParams = 32       // per challenge
)

// ParseChallenge returns the Bearer challenge of resp's WWW-Authenticate
// headers. It reads every header and every challenge in each (other schemes
// such as Basic or DPoP are skipped), accepts token and quoted-string values
// (with escapes) and unknown parameters, and matches scheme and parameter
// names without regard to case. When several Bearer challenges are present,
// the one with error="insufficient_user_authentication" wins, else the first.
//
// It returns ErrNoChallenge when there is no Bearer challenge, and a
// *ChallengeError (ErrMalformedChallenge) when the only Bearer challenge
// is malformed or the headers are unparseable or too large.
func ParseChallenge(resp *http.Response) (*Challenge, error) {
	if resp == nil {
		return nil, ErrNoChallenge
	}
	values := resp.Header.Values("Www-Authenticate")
	total := 0
	for _, v := range values {
		total += len(v)
	}
	if total > maxChallengeBytes {
		return nil, &ChallengeError{Detail: fmt.Sprintf("WWW-Authenticate headers longer than %d bytes", maxChallengeBytes)}
	}
	var all []rawChallenge
	var firstErr error
	for _, v := range values {
		cs, err := parseChallenges(v, maxChallenges-len(all))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		all = append(all, cs...)
	}
	var pick *rawChallenge
	for i := range all {
		c := &all[i]
		if !strings.EqualFold(c.scheme, "Bearer") {
			continue
		}
		if pick == nil {
			pick = c
		}
		if c.param("error") == ErrorInsufficientUserAuthentication {
			pick = c
			break
		}
	}
	if pick == nil {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, ErrNoChallenge
	}
	return pick.challenge()
}

type rawParam struct{ name, value string }

type rawChallenge struct {
	scheme  string
	token68 string
	params  []rawParam
}

func (c *rawChallenge) param(name string) string {
	for _, p := range c.params {
		if p.name == name {
			return p.value
		}
	}
	return ""
}

func (c *rawChallenge) challenge() (*Challenge, error) {
	out := &Challenge{Scheme: "Bearer", Params: make(map[string]string, len(c.params))}
	for _, p := range c.params {
		out.Params[p.name] = p.value
		switch p.name {
		case "error":
			out.Error = p.value
		case "error_description":
			out.ErrorDescription = p.value
		case "acr_values":
			out.ACRValues = strings.Fields(p.value)
		case "scope":
			out.Scope = strings.Fields(p.value)
		case "max_age":
			n, err := strconv.ParseInt(strings.TrimSpace(p.value), 10, 64)
			if err != nil || n < 0 || n > math.MaxInt64/int64(time.Second) {
				return nil, &ChallengeError{Detail: "max_age is not a non-negative integer of seconds"}
			}
			out.MaxAge, out.HasMaxAge = time.Duration(n)*time.Second, true
		}
	}
	return out, nil
}

// parseChallenges parses one WWW-Authenticate value (RFC 9110 §11.6.1):
//
//	challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//	auth-param = token BWS "=" BWS ( token / quoted-string )
//
// in a comma-separated list, where a comma may separate two challenges or two
// parameters of one challenge. It returns at most limit challenges.
func parseChallenges(s string, limit int) ([]rawChallenge, error) {
	p := &chParser{s: s}
	var out []rawChallenge
	for {
		p.skipListSep()
		if p.eof() {
			return out, nil
		}
		if len(out) >= limit {
			return nil, p.fail("too many challenges")
		}
		scheme := p.token()
		if scheme == "" {
			return nil, p.fail("expected an auth-scheme")
		}
		c := rawChallenge{scheme: scheme}
		sp := p.skipSpace()
		if p.eof() || p.peek() == ',' {
			out = append(out, c)
			continue
		}
		if !sp {
			return nil, p.fail("expected a space after the auth-scheme")
		}
		next, err := p.challengeBody(&c)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		if !next {
			return out, nil
		}
	}
}

type chParser struct {
	s string
	i int
}

func (p *chParser) eof() bool  { return p.i >= len(p.s) }
func (p *chParser) peek() byte { return p.s[p.i] }

func (p *chParser) fail(detail string) error {
	return &ChallengeError{Detail: detail, Offset: p.i}
}

func (p *chParser) skipSpace() bool {
	start := p.i
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
	return p.i > start
}

func (p *chParser) skipListSep() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

func (p *chParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// challengeBody parses the token68 or auth-params after a scheme. It returns
// next=true when a following challenge starts at p.i.
func (p *chParser) challengeBody(c *rawChallenge) (next bool, err error) {
	first := true
	for {
		start := p.i
		name := p.token()
		if first && !p.eof() && isToken68Char(p.peek()) {
			// token68 with characters a token lacks ('/'), e.g. "Negotiate a/b=="
			for !p.eof() && isToken68Char(p.peek()) {
				p.i++
			}
			name = p.s[start:p.i]
			if !p.eof() && p.peek() != '=' {
				return false, p.fail("bad token68")
			}
		}
		if name == "" {
			return false, p.fail("expected an auth-param or token68")
		}
		afterName := p.i
		p.skipSpace()
		if p.eof() || p.peek() != '=' {
			if first {
				// token68 without padding; the challenge ends here.
				c.token68 = name
				p.i = afterName
				return p.endOfChallenge()
			}
			// Not a parameter: the name starts the next challenge.
			p.i = start
			return true, nil
		}
		// '=': a parameter, or token68 padding.
		eq := p.i
		p.i++
		p.skipSpace()
		if first && (p.eof() || p.peek() == ',' || p.peek() == '=') {
			p.i = eq
			for !p.eof() && p.peek() == '=' {
				p.i++
			}
			c.token68 = p.s[start:p.i]
			return p.endOfChallenge()
		}
		if p.eof() {
			return false, p.fail("missing auth-param value")
		}
		var value string
		if p.peek() == '"' {
			if value, err = p.quoted(); err != nil {
				return false, err
			}
		} else {
			value = p.token()
			if value == "" {
				return false, p.fail("expected a token or quoted-string value")
			}
		}
		lname := strings.ToLower(name)
		for _, q := range c.params {
			if q.name == lname {
				return false, p.fail("parameter repeated")
			}
		}
		if len(c.params) >= maxChallengeParams {
			return false, p.fail("too many parameters")
		}
		c.params = append(c.params, rawParam{name: lname, value: value})
		first = false
		p.skipSpace()
		if p.eof() {
			return false, nil
		}
		if p.peek() != ',' {
			return false, p.fail("expected a comma")
		}
		p.skipListSep()
		if p.eof() {
			return false, nil
		}
	}
}

// endOfChallenge checks that the challenge ends (end of value or comma).
func (p *chParser) endOfChallenge() (bool, error) {
	p.skipSpace()
	if p.eof() {
		return false, nil
	}
	if p.peek() != ',' {
		return false, p.fail("unexpected character after token68")
	}
	return true, nil
}

// quoted parses a quoted-string at p.i and returns its unescaped content.
func (p *chParser) quoted() (string, error) {
	p.i++ // opening quote
	start := p.i
	var b []byte // allocated only when an escape is found
	for p.i < len(p.s) {
		ch := p.s[p.i]
		switch {
		case ch == '"':
			var v string
			if b == nil {
				v = p.s[start:p.i]
			} else {
				v = string(b)
			}
			p.i++
			return v, nil
		case ch == '\\':
			if p.i+1 >= len(p.s) {
				return "", p.fail("unterminated quoted-string")
			}
			esc := p.s[p.i+1]
			if !isQDText(esc) && esc != '"' && esc != '\\' {
				return "", p.fail("bad quoted-pair")
			}
			if b == nil {
				b = append(make([]byte, 0, len(p.s)-start), p.s[start:p.i]...)
			}
			b = append(b, esc)
			p.i += 2
		case isQDText(ch):
			if b != nil {
				b = append(b, ch)
			}
			p.i++
		default:
			return "", p.fail("control character in quoted-string")
		}
	}
	return "", p.fail("unterminated quoted-string")
}

func isQDText(ch byte) bool {
	return ch == '\t' || ch == ' ' || ch == 0x21 || (ch >= 0x23 && ch <= 0x5b) || (ch >= 0x5d && ch <= 0x7e) || ch >= 0x80
}

func isTChar(ch byte) bool {
	switch {
	case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", ch) >= 0
}

func isToken68Char(ch byte) bool {
	switch {
	case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		return true
	}
	return ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '+' || ch == '/'
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTChar(s[i]) {
			return false
		}
	}
	return true
}
