package stepup

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file holds what a login hook (Config.BeforeSession) adds to a
// session, the organization check of a login, and the Session's read-only
// helpers built on them.

// ErrLoginRefused matches a login that Config.BeforeSession refused (its
// error is wrapped) or whose custom claims are over their bounds. Nothing
// of the login was stored. ErrorStatus: 403.
var ErrLoginRefused = errors.New("stepup: login refused")

// ErrOrganizationMismatch: the ID token is not for the organization the
// login was sent for (AuthorizeOptions.Organization, Config.Organization):
// an "org_" id that differs from org_id, or a name that differs from
// org_name ignoring case (or the claim is missing). Nothing was stored.
// ErrorStatus: 403.
var ErrOrganizationMismatch = errors.New("stepup: the login is not for the requested organization")

// Bounds of the custom claims a session keeps (Config.BeforeSession).
const (
	// MaxSessionClaims is the most custom claims a session keeps.
	MaxSessionClaims = 16
	// MaxSessionClaimName is the longest claim name, in bytes.
	MaxSessionClaimName = 64
	// MaxSessionClaimsSize bounds the encoded claims: every name and value
	// with a length prefix of one or two bytes each.
	MaxSessionClaimsSize = maxClaimsLen
)

// encodeClaims writes m compactly, names sorted (the same map always gives
// the same bytes): uvarint count | (uvarint length + name, uvarint length +
// value)*. It fails, wrapping ErrLoginRefused, on claims over their bounds.
func encodeClaims(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "", nil
	}
	if len(m) > MaxSessionClaims {
		return "", fmt.Errorf("%w: BeforeSession returned %d claims, at most %d", ErrLoginRefused, len(m), MaxSessionClaims)
	}
	names := make([]string, 0, len(m))
	for k := range m {
		if k == "" || len(k) > MaxSessionClaimName {
			return "", fmt.Errorf("%w: BeforeSession returned a claim name of %d bytes (1 to %d)", ErrLoginRefused, len(k), MaxSessionClaimName)
		}
		names = append(names, k)
	}
	slices.Sort(names)
	w := recWriter{}
	w.uvarint(uint64(len(names)))
	for _, k := range names {
		w.str(k)
		w.str(m[k])
	}
	if len(w.b) > MaxSessionClaimsSize {
		return "", fmt.Errorf("%w: BeforeSession returned claims of %d bytes encoded, at most %d", ErrLoginRefused, len(w.b), MaxSessionClaimsSize)
	}
	return string(w.b), nil
}

// checkEncodedClaims validates claims as decodeSession reads them: a
// parser of untrusted input (FuzzDecodeSession reaches it).
func checkEncodedClaims(enc string) error {
	ok := true
	n := walkClaims(enc, func(string, string) bool { return true }, &ok)
	if !ok || n == 0 || n > MaxSessionClaims {
		return errors.New("malformed claims")
	}
	return nil
}

// walkClaims calls f for each claim of enc until f returns false, and
// returns how many it read; *ok is false when enc is malformed.
func walkClaims(enc string, f func(name, value string) bool, ok *bool) int {
	rd := recReader{s: enc}
	n := rd.uvarint()
	if rd.bad || n > MaxSessionClaims {
		*ok = false
		return 0
	}
	prev := ""
	for i := uint64(0); i < n; i++ {
		k := rd.str(MaxSessionClaimName)
		v := rd.str(MaxSessionClaimsSize)
		if rd.bad || k == "" || (i > 0 && k <= prev) {
			*ok = false
			return int(i)
		}
		prev = k
		if !f(k, v) {
			return int(i + 1)
		}
	}
	if !rd.done() {
		*ok = false
	}
	return int(n)
}

// Claim returns the custom claim name that Config.BeforeSession kept for
// this session, and whether there is one. It reads the session record
// already loaded (no store call, no allocation).
func (s *Session) Claim(name string) (string, bool) {
	if s == nil || s.rec == nil || s.rec.Claims == "" {
		return "", false
	}
	var val string
	found, ok := false, true
	walkClaims(s.rec.Claims, func(k, v string) bool {
		if k == name {
			val, found = v, true
			return false
		}
		return k < name // names are sorted
	}, &ok)
	return val, found && ok
}

// Claims returns the custom claims that Config.BeforeSession kept for this
// session, in a map of the caller's own (nil when none).
func (s *Session) Claims() map[string]string {
	if s == nil || s.rec == nil || s.rec.Claims == "" {
		return nil
	}
	m := make(map[string]string)
	ok := true
	walkClaims(s.rec.Claims, func(k, v string) bool { m[k] = v; return true }, &ok)
	if !ok {
		return nil
	}
	return m
}

// StepUpValidUntil returns until when the session's evidence (its latest
// interactive login and its latest step-up, as Client.CheckSession counts
// them) satisfies p, and false when none of it satisfies p at all (p's acr
// or amr are missing, or p has a MaxAge and the evidence has no auth_time).
// For a p without MaxAge it is the session's absolute end (ExpiresAt). A
// time in the past means the step-up has expired: a page guarded by p
// would ask for it again. With Config.ConnectionPolicies, pass the policy
// as the session's connection adapts it: Client.PolicyFor(p, s.Connection).
// Out-of-band step-ups (SessionFor) do not count here, as they do not for
// pages.
func (s *Session) StepUpValidUntil(p Policy) (time.Time, bool) {
	if s == nil {
		return time.Time{}, false
	}
	var until time.Time
	found := false
	for i, a := range [...]Authentication{s.Authentication, s.StepUp} {
		if i == 1 && s.StepUpAt.IsZero() {
			break
		}
		// Checked at its own auth_time: only acr, amr and its presence count.
		at := a.AuthTime
		if at.IsZero() {
			at = s.CreatedAt
		}
		if p.Check(a, at) != nil {
			continue
		}
		u := s.ExpiresAt
		if p.MaxAge > 0 {
			u = a.AuthTime.Add(p.MaxAge)
			if u.After(s.ExpiresAt) {
				u = s.ExpiresAt
			}
		}
		if !found || u.After(until) {
			until, found = u, true
		}
	}
	return until, found
}

// checkOrganization checks the ID token idt of a login sent for the
// organization org (an id "org_..." or a name) as Auth0's SDKs do: an id
// must equal org_id exactly; a name must equal org_name ignoring case.
// orgName is the token's org_name ("" when absent).
func checkOrganization(org string, idt *IDToken, orgName string) error {
	if org == "" {
		return nil
	}
	if strings.HasPrefix(org, "org_") {
		if idt.OrgID != org {
			return fmt.Errorf("%w: the login was for %q and the ID token's org_id is %q", ErrOrganizationMismatch, org, clip(idt.OrgID))
		}
		return nil
	}
	if orgName == "" {
		return fmt.Errorf("%w: the login was for the organization named %q and the ID token has no org_name (turn on organization names in tokens in the tenant's settings)", ErrOrganizationMismatch, org)
	}
	if !strings.EqualFold(orgName, org) {
		return fmt.Errorf("%w: the login was for %q and the ID token's org_name is %q", ErrOrganizationMismatch, org, clip(orgName))
	}
	return nil
}

// orgNameOf returns idt's org_name claim, "" when absent or not a string.
// It decodes the claims only when the payload names org_name.
func orgNameOf(idt *IDToken) string {
	if idt.OrgID == "" && !strings.Contains(idt.payload, `"org_name"`) {
		return ""
	}
	v, _ := idt.Claims()["org_name"].(string)
	return v
}
