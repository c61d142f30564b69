package auth0test

import (
	"slices"
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
	api := &ActionAPI{}
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
	return api
}
