package stepup

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ACRMultiFactor is the authentication context class Auth0 performs multi-factor
// authentication for when it is listed in acr_values, and reports in the acr claim
// of the resulting ID token.
const ACRMultiFactor = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"

// AMRMultiFactor is the authentication method reference Auth0 puts in the amr claim
// of an ID token after multi-factor authentication.
const AMRMultiFactor = "mfa"

// A Policy says how strong and how recent an authentication must be before a
// resource is served. The zero Policy accepts any authenticated user.
//
// ACR values are alternatives (any one is enough) and are sent, in order of
// preference, as acr_values when a step-up is requested. AMR values are all
// required. Auth0 reports acr only for classes listed in the tenant's
// acr_values_supported, and omits amr from tokens issued by refresh, silent
// authentication and the MFA API: a Policy is therefore checked against the
// evidence of an interactive login, kept in the session (see Authentication).
type Policy struct {
	// Name identifies the policy in errors and logs, e.g. "salaries".
	Name string
	// ACR lists acceptable authentication context classes, most preferred
	// first. Empty: acr is neither requested nor checked.
	ACR []string
	// AMR lists authentication methods that must all appear in amr.
	AMR []string
	// MaxAge bounds the age of the authentication (now - auth_time). Zero: no bound.
	// When set, it is sent as max_age with a step-up request.
	MaxAge time.Duration
	// Scopes lists scopes an access token must carry (resource servers only).
	Scopes []string
}

// Ready-made policies.
var (
	// Login accepts any interactive login.
	Login = Policy{Name: "login"}
	// MFA demands Auth0's multi-factor class in acr and "mfa" in amr: the
	// check Auth0's step-up documentation intends (its widely copied sample
	// rejects when amr contains "mfa", which is inverted).
	MFA = Policy{Name: "mfa", ACR: []string{ACRMultiFactor}, AMR: []string{AMRMultiFactor}}
)

// WithMaxAge returns a copy of p whose authentication may be at most d old.
func (p Policy) WithMaxAge(d time.Duration) Policy {
	p.MaxAge = d
	return p
}

// Named returns a copy of p called name.
func (p Policy) Named(name string) Policy {
	p.Name = name
	return p
}

// ACRValues returns the acr_values parameter for p: its ACR values separated by spaces.
func (p Policy) ACRValues() string { return strings.Join(p.ACR, " ") }

// MaxAgeSeconds returns the max_age parameter for p, rounded up to whole seconds,
// and false when p has no MaxAge.
func (p Policy) MaxAgeSeconds() (string, bool) {
	if p.MaxAge <= 0 {
		return "", false
	}
	return strconv.FormatInt(ceilSeconds(p.MaxAge), 10), true
}

// ceilSeconds rounds d up to whole seconds, as max_age is sent, without
// overflowing: d + time.Second - 1 wraps negative for a max_age near the
// largest Duration (max_age=9223372036 parsed from a challenge did).
// Negative durations give 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// addSaturating returns a + b for b >= 0, capped at the largest Duration.
func addSaturating(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// RequiresStepUp reports whether p asks for more than a plain login: an acr, an amr or a maximum age.
func (p Policy) RequiresStepUp() bool { return len(p.ACR) > 0 || len(p.AMR) > 0 || p.MaxAge > 0 }

// Authentication is the evidence of one interactive authentication, as reported
// by the ID token of that login.
type Authentication struct {
	ACR      string
	AMR      []string
	AuthTime time.Time
}

// Check returns nil when a satisfies p at time now, and otherwise a
// *StepUpError that says what is missing. It does not allocate when a satisfies p.
func (p *Policy) Check(a Authentication, now time.Time) error {
	if len(p.ACR) > 0 {
		if a.ACR == "" {
			return &StepUpError{Policy: *p, Reason: ReasonACRMissing}
		}
		if !slices.Contains(p.ACR, a.ACR) {
			return &StepUpError{Policy: *p, Reason: ReasonACRMismatch, ACR: a.ACR}
		}
	}
	for _, m := range p.AMR {
		if !slices.Contains(a.AMR, m) {
			return &StepUpError{Policy: *p, Reason: ReasonAMRMissing, Method: m}
		}
	}
	if p.MaxAge > 0 {
		if a.AuthTime.IsZero() {
			return &StepUpError{Policy: *p, Reason: ReasonAuthTimeMissing}
		}
		if age := now.Sub(a.AuthTime); age > p.MaxAge {
			return &StepUpError{Policy: *p, Reason: ReasonTooOld, Age: age}
		}
	}
	return nil
}

// ValidUntil returns when an authentication at authTime stops satisfying p's
// MaxAge, and false when p has no MaxAge.
func (p *Policy) ValidUntil(authTime time.Time) (time.Time, bool) {
	if p.MaxAge <= 0 || authTime.IsZero() {
		return time.Time{}, false
	}
	return authTime.Add(p.MaxAge), true
}
