package auth0test

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Protocols reported in ActionEvent.Protocol, as Auth0 names them.
const (
	ProtocolOIDC         = "oidc-basic-profile"
	ProtocolRefreshToken = "oauth2-refresh-token"
	ProtocolCIBA         = "oidc-ciba"
	ProtocolMFA          = "oauth2-mfa" // the MFA API grants (mfa-otp, mfa-oob, mfa-recovery-code)
)

// ActionEvent is what the tenant's post-login Action sees (a subset of Auth0's
// event object).
type ActionEvent struct {
	User       User
	ClientID   string
	Connection string
	// Protocol is ProtocolOIDC (interactive and silent logins), ProtocolRefreshToken,
	// ProtocolCIBA or ProtocolMFA.
	Protocol string
	// ACRValues is event.transaction.acr_values (requested, whether supported or not).
	ACRValues []string
	// Scopes requested, and the audience (API identifier) if any.
	Scopes   []string
	Audience string
	// AuthenticationMethods performed in the session: "pwd" (database login),
	// "federated" (social login), "mfa". The names of Authentication.
	AuthenticationMethods []string
	// Authentication is Auth0's event.authentication.methods: what the user
	// completed in the SSO session, and when. On interactive and silent logins
	// (ProtocolOIDC) it is the first factor, {"pwd" or "federated", the session's
	// auth_time}, then {"mfa", when the session's one-time code was accepted} once
	// the session performed MFA. The Action runs after the first factor and before
	// the MFA it requests (RequireMFA, or acr_values and MFA scopes): a login that
	// performs MFA in this very transaction has no "mfa" element yet, a later login
	// in the same session has it (with the time of that earlier MFA). prompt=login
	// or an exceeded max_age starts over: only the new first factor. MFA API grants
	// (ProtocolMFA): [{"mfa", the grant time}]. Refresh-token exchanges: nil, or
	// with Config.RefreshActionAuthentication the methods of the login that
	// created the refresh token, with their original timestamps (Auth0 marks
	// event.authentication optional and documents neither; see doc.go). CIBA:
	// nil. An Action copies the "mfa" element's
	// Timestamp into a namespaced access-token claim when the API needs the time
	// of the step-up (access tokens carry no auth_time).
	Authentication []AuthMethod
	// Silent is true when the login completed without any page (SSO or prompt=none).
	Silent bool
	// Organization is event.organization: the login's organization (the
	// organization parameter), kept by its refresh tokens; nil without one.
	Organization *ActionOrganization
	// RefreshToken is event.refresh_token on refresh-token exchanges
	// (ProtocolRefreshToken), nil otherwise.
	RefreshToken *ActionRefreshToken
}

// ActionRefreshToken is the subset of Auth0's event.refresh_token auth0test
// fills: the family's id, when the login created it, when it was last
// exchanged (the creation time before the first exchange), and the sid of the
// login's SSO session.
type ActionRefreshToken struct {
	ID                        string
	CreatedAt, LastExchangeAt time.Time
	SessionID                 string
	// Metadata is event.refresh_token.metadata: what Actions stored on the
	// refresh token (ActionAPI.SetRefreshTokenMetadata) at the login that
	// created it and at earlier exchanges, kept across rotation. Nil unless
	// Config.RefreshTokenMetadata (an Auth0 Early Access feature for
	// Enterprise plans).
	Metadata map[string]string
}

// AuthMethod is one element of Auth0's event.authentication.methods.
type AuthMethod struct {
	Name      string    // "pwd", "federated" or "mfa"
	Timestamp time.Time // when the user completed it
}

// authMethods builds event.authentication.methods for the methods performed in
// a session: the first factor at authTime, mfa at mfaTime.
func authMethods(methods []string, authTime, mfaTime time.Time) []AuthMethod {
	out := make([]AuthMethod, 0, len(methods))
	for _, m := range methods {
		ts := authTime
		if m == "mfa" {
			ts = mfaTime
		}
		out = append(out, AuthMethod{Name: m, Timestamp: ts})
	}
	return out
}

// ActionAPI is what the Action may do (a subset of Auth0's api object).
type ActionAPI struct {
	requireMFA      bool
	rememberBrowser bool
	denied          bool
	reason          string
	idClaims        map[string]any
	atClaims        map[string]any
	// Refresh-token metadata (Config.RefreshTokenMetadata): rtMetaOK when
	// api.refreshToken exists in this flow, rtMeta the metadata as the Action
	// left it (applied only when a refresh token is issued), rtMetaChanged
	// when it called a method, rtMetaRefused the calls Auth0's limits refuse.
	rtMetaOK      bool
	rtMeta        map[string]string
	rtMetaChanged bool
	rtMetaRefused []string
}

// RequireMFA is api.multifactor.enable('any', {allowRememberBrowser: false}).
// On /authorize it shows the OTP page every time, even when the SSO session
// already performed MFA (Auth0: "prompted for MFA each time"); on a
// refresh-token exchange it answers mfa_required.
func (a *ActionAPI) RequireMFA() { a.requireMFA, a.rememberBrowser = true, false }

// RequireMFARememberBrowser is api.multifactor.enable('any',
// {allowRememberBrowser: true}): an SSO session that already performed MFA
// needs no OTP page.
func (a *ActionAPI) RequireMFARememberBrowser() { a.requireMFA, a.rememberBrowser = true, true }

// Deny is api.access.deny(reason): the login fails with access_denied.
func (a *ActionAPI) Deny(reason string) { a.denied, a.reason = true, reason }

// SetIDTokenClaim is api.idToken.setCustomClaim. Restricted claims (see
// RestrictedClaims) are ignored, as Auth0 ignores them.
func (a *ActionAPI) SetIDTokenClaim(name string, v any) { setCustomClaim(&a.idClaims, name, v) }

// SetAccessTokenClaim is api.accessToken.setCustomClaim. Restricted claims, acr,
// amr and auth_time among them, are ignored.
func (a *ActionAPI) SetAccessTokenClaim(name string, v any) { setCustomClaim(&a.atClaims, name, v) }

// setCustomClaim sets a claim in *claims (made on first use) unless it is restricted.
func setCustomClaim(claims *map[string]any, name string, v any) {
	if restricted(name) {
		return
	}
	if *claims == nil {
		*claims = map[string]any{}
	}
	(*claims)[name] = v
}

// Auth0's limits on refresh-token metadata (refresh-token-metadata page).
const (
	MaxRefreshTokenMetadataEntries = 25
	MaxRefreshTokenMetadataLength  = 255 // of a key and of a value
)

// HasRefreshToken reports whether api.refreshToken exists for this Action:
// with Config.RefreshTokenMetadata, on interactive and silent logins, CIBA
// and refresh-token exchanges (the flows Auth0 lists); never on MFA-API
// grants. It is the "api.refreshToken?.setMetadata" guard of the README's
// Action.
func (a *ActionAPI) HasRefreshToken() bool { return a.rtMetaOK }

// SetRefreshTokenMetadata is api.refreshToken.setMetadata(key, value). The
// metadata is stored on the refresh token when one is issued (at the code
// exchange for a login with offline_access, at CIBA, or by the refresh-token
// exchange itself; not when the flow stops at mfa_required or a denial) and
// read back on later exchanges in ActionRefreshToken.Metadata. A key of
// other characters than letters, digits, "_" and "-", a key or value longer
// than MaxRefreshTokenMetadataLength, or a 26th key is refused: nothing is
// set and the tenant's Logger says why (Auth0 documents the limits, not what
// it does beyond them: auth0test's choice). Without Config.RefreshTokenMetadata
// (api.refreshToken absent) it does nothing.
func (a *ActionAPI) SetRefreshTokenMetadata(key, value string) {
	if !a.rtMetaOK {
		return
	}
	switch {
	case !validMetadataKey(key):
		a.rtMetaRefused = append(a.rtMetaRefused, "invalid key "+strconv.Quote(key))
		return
	case len(value) > MaxRefreshTokenMetadataLength:
		a.rtMetaRefused = append(a.rtMetaRefused, "value of "+key+" longer than 255 characters")
		return
	}
	if _, ok := a.rtMeta[key]; !ok && len(a.rtMeta) >= MaxRefreshTokenMetadataEntries {
		a.rtMetaRefused = append(a.rtMetaRefused, "more than 25 entries: "+key)
		return
	}
	if a.rtMeta == nil {
		a.rtMeta = map[string]string{}
	}
	a.rtMeta[key], a.rtMetaChanged = value, true
}

// DeleteRefreshTokenMetadata is api.refreshToken.deleteMetadata(key).
func (a *ActionAPI) DeleteRefreshTokenMetadata(key string) {
	if a.rtMetaOK {
		delete(a.rtMeta, key)
		a.rtMetaChanged = true
	}
}

// EvictRefreshTokenMetadata is api.refreshToken.evictMetadata(): all of it.
func (a *ActionAPI) EvictRefreshTokenMetadata() {
	if a.rtMetaOK {
		a.rtMeta, a.rtMetaChanged = nil, true
	}
}

func validMetadataKey(k string) bool {
	if k == "" || len(k) > MaxRefreshTokenMetadataLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// RestrictedClaims cannot be set by an Action.
var RestrictedClaims = []string{"acr", "amr", "aud", "auth_time", "azp", "cnf", "exp", "gty", "iat", "iss",
	"jti", "nbf", "nonce", "org_id", "org_name", "permissions", "scope", "sid", "sub", "client_id"}

func restricted(name string) bool {
	if name == "" || strings.HasPrefix(name, "https://auth0.com/") || strings.HasPrefix(name, "https://auth0.io/") {
		return true
	}
	return slices.Contains(RestrictedClaims, name)
}

// runAction runs the configured Action, if any, with t.mu NOT held.
func (t *Tenant) runAction(ev ActionEvent) *ActionAPI {
	api := &ActionAPI{rtMetaOK: t.cfg.RefreshTokenMetadata && ev.Protocol != ProtocolMFA}
	if ev.RefreshToken != nil {
		r := *ev.RefreshToken
		if !t.cfg.RefreshTokenMetadata {
			r.Metadata = nil
		}
		api.rtMeta = maps.Clone(r.Metadata)
		r.Metadata = maps.Clone(r.Metadata) // the Action's own copy
		ev.RefreshToken = &r
	}
	if t.cfg.Action != nil {
		ev.ACRValues = append([]string(nil), ev.ACRValues...)
		ev.Scopes = append([]string(nil), ev.Scopes...)
		ev.AuthenticationMethods = append([]string(nil), ev.AuthenticationMethods...)
		ev.Authentication = append([]AuthMethod(nil), ev.Authentication...)
		// The Action gets its own copies: what it changes stays in its event.
		ev.User.UserMetadata = cloneJSONMap(ev.User.UserMetadata)
		ev.User.AppMetadata = cloneJSONMap(ev.User.AppMetadata)
		if ev.Organization != nil {
			o := *ev.Organization
			ev.Organization = &o
		}
		t.cfg.Action(&ev, api)
	}
	for _, why := range api.rtMetaRefused {
		t.cfg.Logger.Warn("auth0test: api.refreshToken.setMetadata refused", "reason", why)
	}
	return api
}
