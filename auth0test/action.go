package auth0test

import "strings"

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
	// "federated" (social login), "mfa".
	AuthenticationMethods []string
	// Silent is true when the login completed without any page (SSO or prompt=none).
	Silent bool
}

// ActionAPI is what the Action may do (a subset of Auth0's api object).
type ActionAPI struct {
	requireMFA bool
	denied     bool
	reason     string
	idClaims   map[string]any
	atClaims   map[string]any
}

// RequireMFA is api.multifactor.enable('any', {allowRememberBrowser: false}).
// On /authorize it shows the OTP page unless the SSO session already performed
// MFA; on a refresh-token exchange it answers mfa_required.
func (a *ActionAPI) RequireMFA() { a.requireMFA = true }

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
	for _, r := range RestrictedClaims {
		if r == name {
			return true
		}
	}
	return false
}

// runAction runs the configured Action, if any, with t.mu NOT held.
func (t *Tenant) runAction(ev ActionEvent) *ActionAPI {
	api := &ActionAPI{}
	if t.cfg.Action != nil {
		ev.ACRValues = append([]string(nil), ev.ACRValues...)
		ev.Scopes = append([]string(nil), ev.Scopes...)
		ev.AuthenticationMethods = append([]string(nil), ev.AuthenticationMethods...)
		t.cfg.Action(&ev, api)
	}
	return api
}
