package auth0test

import (
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// MFAACR is the authentication class Auth0 uses for multi-factor authentication.
// Requesting it in acr_values makes the tenant's step-up Action demand MFA.
const MFAACR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"

// Grant type identifiers accepted by /oauth/token.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantCIBA              = "urn:openid:params:grant-type:ciba"
	GrantMFAOTP            = "http://auth0.com/oauth/grant-type/mfa-otp"
	GrantMFAOOB            = "http://auth0.com/oauth/grant-type/mfa-oob"
	GrantMFARecoveryCode   = "http://auth0.com/oauth/grant-type/mfa-recovery-code"
)

// Connection names and strategies of the default tenant.
const (
	DatabaseConnection = "Username-Password-Authentication"
	GoogleConnection   = "google-oauth2"
)

// Config describes a tenant. The zero value is a usable tenant with the defaults
// documented on each field. Start copies the Config; later changes to the caller's
// value (or its slices) do not affect a running tenant.
type Config struct {
	// Addr is the loopback address to listen on. Default "127.0.0.1:0" (a free port).
	Addr string
	// CA, when not nil, issues the tenant's serving certificate (see CA).
	// Default: a CA made at start, trusted by nothing but Client and CertPool.
	CA *CA

	// Applications registered on the tenant. Default: []Application{DefaultApplication()}.
	Applications []Application
	// APIs (resource servers) registered on the tenant. Default: none.
	APIs []API
	// Users of the tenant. Default: DefaultUsers().
	Users []User
	// Connections of the tenant. Default: the database connection
	// Username-Password-Authentication (strategy "auth0") and google-oauth2.
	Connections []Connection

	// ACRValuesSupported, when set, is published in discovery as
	// acr_values_supported (the FAPI setting of Auth0's tenants), and a requested
	// acr value is then only honoured (and only comes back in the ID token) when
	// listed. Default nil: discovery has no acr_values_supported (as Auth0's
	// sample document) and MFAACR is honoured, as by Auth0's step-up Action.
	ACRValuesSupported []string
	// IgnoreACRValues emulates a misconfigured tenant whose post-login Action does not
	// look at acr_values: no MFA is performed for them and no acr is returned.
	IgnoreACRValues bool

	// RefreshTokenRotation enables rotation: each exchange returns a new refresh token
	// and invalidates the one used; reusing an invalidated token revokes its whole
	// family. Default false: a refresh token is reusable and exchanges return none.
	RefreshTokenRotation bool
	// RotationOverlap is the reuse interval: within it the immediately previous
	// refresh token may be exchanged again without breach detection. Default 0.
	RotationOverlap time.Duration
	// RefreshTokenLifetime is the absolute lifetime of a refresh-token family
	// (not extended by rotation). Default 2592000 s (30 days).
	RefreshTokenLifetime time.Duration
	// RefreshTokenIdleLifetime is renewed by each exchange. Default 2592000 s.
	RefreshTokenIdleLifetime time.Duration

	// IDTokenLifetime defaults to 36000 s.
	IDTokenLifetime time.Duration
	// AccessTokenLifetime defaults to 86400 s (an API's own lifetime wins).
	AccessTokenLifetime time.Duration
	// SessionLifetime bounds the SSO session absolutely (default 7 days) and
	// SessionIdleLifetime since its last use (default 3 days), like Auth0's defaults.
	SessionLifetime, SessionIdleLifetime time.Duration

	// AllowRememberBrowser emulates a step-up Action that calls
	// api.multifactor.enable('any', {allowRememberBrowser: true}): an SSO session
	// that performed MFA satisfies later acr_values / MFAScopes requests without
	// the OTP page. Default false, as the documented step-up Action
	// (allowRememberBrowser: false): the OTP page each time MFA is asked for.
	// ActionAPI.RequireMFA always prompts, whatever this says.
	AllowRememberBrowser bool
	// AlwaysIncludeAuthTime puts auth_time in every ID token. Default false:
	// auth_time only when the authorization request sent max_age or
	// prompt=login (Auth0 documents it for those), and in ID tokens of grants
	// that continue such a login (refresh, as recorded in the family).
	AlwaysIncludeAuthTime bool
	// MFARequiredWithoutToken answers mfa_required without mfa_token and
	// mfa_requirements, as Auth0 does in some Action-triggered flows (Auth0
	// support: "Custom MFA via Actions and ROP Flow Does Not Return an
	// mfa_token"). Default false: the token is included.
	MFARequiredWithoutToken bool
	// EndSessionDiscovery publishes end_session_endpoint in discovery (Auth0's
	// "RP-Initiated Logout End Session Endpoint Discovery" tenant setting).
	// Default false. /oidc/logout answers either way.
	EndSessionDiscovery bool
	// PAR publishes pushed_authorization_request_endpoint in discovery (a
	// tenant with Pushed Authorization Requests). Default false. /oauth/par
	// answers confidential clients either way (auth0test does not emulate plans).
	PAR bool
	// CIBA publishes backchannel_authentication_endpoint and its delivery modes
	// in discovery (a tenant with Client-Initiated Backchannel Authentication).
	// Default false. /bc-authorize answers either way.
	CIBA bool
	// RateLimits bound requests per endpoint path (e.g. "/oauth/token") within a
	// window; beyond the limit the tenant answers 429 too_many_requests. Every
	// answer of a limited endpoint carries X-RateLimit-Limit, -Remaining and
	// -Reset (Auth0's headers). Default none: no limits (Auth0's real limits
	// depend on the plan; set the ones a test needs).
	RateLimits map[string]RateLimit
	// BackChannelLogoutClient is the HTTP client that delivers logout tokens to
	// applications' BackChannelLogoutURLs (give it the app's test server's
	// client, e.g. httptest.Server.Client()). Default: a client trusting
	// BackChannelLogoutCAs when set, else the system roots.
	BackChannelLogoutClient *http.Client
	// BackChannelLogoutCAs are the roots the default delivery client trusts
	// (e.g. a pool with httptest.Server.Certificate()). Default: the system roots.
	BackChannelLogoutCAs *x509.CertPool

	// LogoutURLs are the tenant's Allowed Logout URLs (Advanced settings), used
	// by /v2/logout without client_id. Default none.
	LogoutURLs []string

	// IssuerInAuthorizationResponse adds the RFC 9207 iss parameter to every
	// redirect to a callback URL.
	IssuerInAuthorizationResponse bool

	// Organizations of the tenant. Default none. An application sends
	// organization (and invitation) on /authorize only when its
	// OrganizationUsage allows it.
	Organizations []Organization
	// OrganizationNames is the tenant setting "Allow Organization Names in
	// Authentication API": the organization parameter may then be a name, and ID
	// and access tokens carry org_name besides org_id. Default false: ids
	// only, org_id only.
	OrganizationNames bool

	// Now is the tenant's clock; default time.Now. Every expiry (codes, PAR, CIBA,
	// MFA tokens, refresh tokens, sessions) and every iat/exp/auth_time uses it, so
	// tests move the clock instead of sleeping.
	Now func() time.Time

	// RefreshActionAuthentication gives the Action, on refresh-token exchanges,
	// event.authentication of the login that created the refresh token (its
	// methods with their original timestamps). Default false: none, since
	// Auth0 documents event.authentication as optional and says nothing of
	// its content on a refresh (see the package doc), so code must not depend
	// on it.
	RefreshActionAuthentication bool

	// RefreshTokenMetadata enables Auth0's refresh-token metadata (Early
	// Access, Enterprise plans only): ActionAPI.SetRefreshTokenMetadata and
	// its siblings (api.refreshToken) store keys on the refresh token the
	// flow issues, and refresh-token exchanges read them back in
	// ActionEvent.RefreshToken.Metadata (event.refresh_token.metadata).
	// Default false, as on other plans: ActionAPI.HasRefreshToken is false
	// and the methods do nothing.
	RefreshTokenMetadata bool

	// Action is the tenant's post-login Action. It runs on interactive and silent
	// logins, refresh-token exchanges, CIBA and MFA-API grants (see ActionEvent.Protocol),
	// on the tenant's handler goroutines: it may be called concurrently.
	// StepUpAction and ClaimsAction are ready ones.
	Action ActionFunc

	// Logger receives one debug line per request and every choice the tenant makes
	// that a test may want to know about. Default: discard.
	Logger *slog.Logger
}

// Application is an Auth0 application (client).
type Application struct {
	Name         string
	ClientID     string
	ClientSecret string
	// CallbackURLs are the allowed redirect_uri values (exact match).
	CallbackURLs []string
	// LogoutURLs are the allowed returnTo / post_logout_redirect_uri values.
	LogoutURLs []string
	// GrantTypes allowed for the application. Default: authorization_code,
	// refresh_token, client_credentials, CIBA, mfa-otp, mfa-oob, mfa-recovery-code.
	GrantTypes []string
	// TokenEndpointAuthMethod is "client_secret_post" (default), "client_secret_basic",
	// "private_key_jwt" (with ClientAssertionKeys) or "none" (public client: PKCE is
	// then required). It is enforced.
	TokenEndpointAuthMethod string
	// ClientAssertionKeys are the public keys registered for private_key_jwt.
	ClientAssertionKeys []*rsa.PublicKey
	// IDTokenAlg is "RS256" (default) or "HS256" (signed with ClientSecret).
	IDTokenAlg string
	// ThirdParty applications (Auth0's is_first_party false) show the consent
	// page until the user granted the requested scopes. Default false.
	ThirdParty bool
	// BackChannelLogoutURLs is Auth0's oidc_logout.backchannel_logout_urls: at
	// most one https URL the tenant POSTs logout tokens to. Default none.
	BackChannelLogoutURLs []string
	// BackChannelLogoutInitiators is Auth0's backchannel_logout_initiators.
	// Default (zero): mode "custom" with rp-logout and idp-logout selected,
	// as an application Auth0 sends back-channel logout tokens to without
	// initiators configured (Auth0's "OIDC Back-Channel Logout Initiators"
	// page: rp-logout stays subscribed by default, and subscribing to
	// password changes needs rp-logout and idp-logout beside it). Select
	// more, or choose Mode "all" for all.
	BackChannelLogoutInitiators LogoutInitiators
	// ManagementScopes is the application's client grant for the Management
	// API (audience https://{domain}/api/v2/): the scopes its
	// client-credentials tokens get. Default none: no client grant, and
	// client_credentials for that audience is refused with access_denied, as on
	// Auth0. ManagementScopes (the package variable) lists every scope the
	// emulated endpoints check.
	ManagementScopes []string
	// OrganizationUsage is Auth0's organization_usage: OrganizationDeny
	// (default: the organization parameter is refused), OrganizationAllow, or
	// OrganizationRequire (every login names an organization; auth0test
	// emulates the "no prompt" behaviour: without one, invalid_request).
	OrganizationUsage string
}

// LogoutInitiators selects which events send a back-channel logout token.
type LogoutInitiators struct {
	// Mode is "custom" (only Selected) or "all". Default "custom".
	Mode string
	// Selected initiators when Mode is "custom": the Initiator* constants.
	// Default (nil with Mode ""): rp-logout, idp-logout, password-changed,
	// session-expired, session-revoked.
	Selected []string
}

// Back-channel logout initiators, as Auth0 names them.
const (
	InitiatorRPLogout               = "rp-logout"
	InitiatorIDPLogout              = "idp-logout"
	InitiatorPasswordChanged        = "password-changed"
	InitiatorSessionExpired         = "session-expired"
	InitiatorSessionRevoked         = "session-revoked"
	InitiatorAccountDeleted         = "account-deleted"
	InitiatorEmailIdentifierChanged = "email-identifier-changed"
)

var allInitiators = []string{InitiatorRPLogout, InitiatorIDPLogout, InitiatorPasswordChanged,
	InitiatorSessionExpired, InitiatorSessionRevoked, InitiatorAccountDeleted, InitiatorEmailIdentifierChanged}

// RateLimit is a request budget of one endpoint.
type RateLimit struct {
	// Limit requests per Window (Window default 1 s).
	Limit  int
	Window time.Duration
}

// API is an Auth0 API (resource server).
type API struct {
	// Identifier is the audience.
	Identifier string
	// Scopes the API defines; requested scopes outside this list are dropped.
	Scopes []string
	// MFAScopes: requesting one of them makes the tenant demand MFA (Auth0's
	// documented API step-up: an Action calling api.multifactor.enable).
	MFAScopes []string
	// RBAC is the API's "Enable RBAC" with "Add Permissions in the Access
	// Token": granted scopes are limited to the user's User.Permissions for
	// this API, and access tokens carry them as "permissions". Default false.
	RBAC bool
	// AccessTokenLifetime overrides Config.AccessTokenLifetime for this API.
	AccessTokenLifetime time.Duration
	// SigningAlg of the access tokens: "RS256" (default).
	SigningAlg string
}

// User is a tenant user.
type User struct {
	// ID is the user_id, e.g. "auth0|alice" or "google-oauth2|1234".
	ID string
	// Connection the user belongs to. Default: derived from the ID's prefix.
	Connection string
	Email      string
	// Password for database users; unused for social users.
	Password string
	Name     string
	// TOTPSecret is the base32 secret of the user's enrolled OTP factor;
	// "" means no factor is enrolled.
	TOTPSecret string
	// RecoveryCode is the user's MFA recovery code ("" = none). Using it through the
	// mfa-recovery-code grant replaces it with a new one.
	RecoveryCode string
	// Blocked users cannot log in (error=unauthorized, "user is blocked").
	Blocked bool
	// Permissions assigned to the user, by API identifier (used by APIs with RBAC).
	Permissions map[string][]string
	// UserMetadata and AppMetadata are the user's user_metadata and
	// app_metadata (Management API GET/PATCH /api/v2/users/{id}; the Action
	// sees them in ActionEvent.User). Default none. A running tenant never
	// changes these maps in place: a PATCH replaces them.
	UserMetadata, AppMetadata map[string]any
}

// Connection is an identity provider.
type Connection struct {
	Name string
	// Strategy is "auth0" for a database connection, or a social strategy such as
	// "google-oauth2" (emulated by a page that signs in one of its users).
	Strategy string
	// DisplayName is what the hosted pages call it ("Continue with
	// {DisplayName}"). Default: "Google" for google-oauth2, else Name.
	DisplayName string
}

// DefaultApplication is the application a zero Config registers.
func DefaultApplication() Application {
	return Application{
		Name:         "Stepup Demo",
		ClientID:     "stepup-demo-client",
		ClientSecret: "stepup-demo-secret-0123456789abcdef0123456789abcdef",
		CallbackURLs: []string{"http://127.0.0.1:8080/callback", "http://localhost:8080/callback"},
		LogoutURLs:   []string{"http://127.0.0.1:8080/", "http://localhost:8080/"},
	}
}

// Default users' credentials.
const (
	AliceEmail    = "alice@fabrikam.example"
	AlicePassword = "correct horse battery staple"
	// AliceTOTPSecret is alice's enrolled OTP factor (base32).
	AliceTOTPSecret   = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	AliceRecoveryCode = "ALICE0RECOVERY0CODE00000"
	BobEmail          = "bob@fabrikam.example"
	BobPassword       = "hunter2 hunter2 hunter2"
	CarolEmail        = "carol@gmail.example"
)

// DefaultUsers returns the users a zero Config creates: alice (database user with
// an OTP factor and a recovery code), bob (database user, no factor enrolled) and
// carol (a google-oauth2 user, with an OTP factor).
func DefaultUsers() []User {
	return []User{
		{ID: "auth0|alice", Connection: DatabaseConnection, Email: AliceEmail, Password: AlicePassword,
			Name: "Alice Fabrikam", TOTPSecret: AliceTOTPSecret, RecoveryCode: AliceRecoveryCode},
		{ID: "auth0|bob", Connection: DatabaseConnection, Email: BobEmail, Password: BobPassword, Name: "Bob Fabrikam"},
		{ID: "google-oauth2|108000000000000000001", Connection: GoogleConnection, Email: CarolEmail,
			Name: "Carol Google", TOTPSecret: "KRSXG5CTMVRXEZLUKN2XAZLSKNSWG4TF"},
	}
}

// DefaultConnections returns the database and google-oauth2 connections.
func DefaultConnections() []Connection {
	return []Connection{{Name: DatabaseConnection, Strategy: "auth0"}, {Name: GoogleConnection, Strategy: "google-oauth2"}}
}

func defaultGrantTypes() []string {
	return []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantCIBA,
		GrantMFAOTP, GrantMFAOOB, GrantMFARecoveryCode}
}

const (
	defaultRefreshLifetime = 2592000 * time.Second
	defaultIDTokenLifetime = 36000 * time.Second
	defaultATLifetime      = 86400 * time.Second
	defaultSessionLifetime = 7 * 24 * time.Hour
	defaultSessionIdle     = 3 * 24 * time.Hour
)

// withDefaults returns a deep-enough copy of c with defaults applied.
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if c.Applications == nil {
		c.Applications = []Application{DefaultApplication()}
	}
	apps := make([]Application, len(c.Applications))
	for i, a := range c.Applications {
		a.CallbackURLs = append([]string(nil), a.CallbackURLs...)
		a.LogoutURLs = append([]string(nil), a.LogoutURLs...)
		a.ClientAssertionKeys = slices.Clone(a.ClientAssertionKeys)
		a.BackChannelLogoutURLs = slices.Clone(a.BackChannelLogoutURLs)
		a.BackChannelLogoutInitiators.Selected = slices.Clone(a.BackChannelLogoutInitiators.Selected)
		if a.BackChannelLogoutInitiators.Mode == "" {
			a.BackChannelLogoutInitiators.Mode = "custom"
			if a.BackChannelLogoutInitiators.Selected == nil {
				a.BackChannelLogoutInitiators.Selected = allInitiators[:2:2] // rp-logout, idp-logout
			}
		}
		if a.GrantTypes == nil {
			a.GrantTypes = defaultGrantTypes()
		} else {
			a.GrantTypes = append([]string(nil), a.GrantTypes...)
		}
		if a.TokenEndpointAuthMethod == "" {
			a.TokenEndpointAuthMethod = "client_secret_post"
		}
		if a.IDTokenAlg == "" {
			a.IDTokenAlg = "RS256"
		}
		a.ManagementScopes = slices.Clone(a.ManagementScopes)
		if a.OrganizationUsage == "" {
			a.OrganizationUsage = OrganizationDeny
		}
		apps[i] = a
	}
	c.Applications = apps
	apis := make([]API, len(c.APIs))
	for i, a := range c.APIs {
		a.Scopes = append([]string(nil), a.Scopes...)
		a.MFAScopes = append([]string(nil), a.MFAScopes...)
		if a.SigningAlg == "" {
			a.SigningAlg = "RS256"
		}
		apis[i] = a
	}
	c.APIs = apis
	if c.Users == nil {
		c.Users = DefaultUsers()
	}
	c.Users = append([]User(nil), c.Users...)
	for i := range c.Users {
		if p := c.Users[i].Permissions; p != nil {
			cp := make(map[string][]string, len(p))
			for k, v := range p {
				cp[k] = slices.Clone(v)
			}
			c.Users[i].Permissions = cp
		}
		c.Users[i].UserMetadata = cloneJSONMap(c.Users[i].UserMetadata)
		c.Users[i].AppMetadata = cloneJSONMap(c.Users[i].AppMetadata)
	}
	orgs := make([]Organization, len(c.Organizations))
	for i, o := range c.Organizations {
		o.Members = slices.Clone(o.Members)
		orgs[i] = o
	}
	c.Organizations = orgs
	c.RateLimits = maps.Clone(c.RateLimits)
	c.LogoutURLs = slices.Clone(c.LogoutURLs)
	if c.Connections == nil {
		c.Connections = DefaultConnections()
	}
	c.Connections = append([]Connection(nil), c.Connections...)
	for i, cn := range c.Connections {
		if cn.DisplayName == "" {
			c.Connections[i].DisplayName = cn.Name
			if cn.Strategy == "google-oauth2" {
				c.Connections[i].DisplayName = "Google"
			}
		}
	}
	for i, u := range c.Users {
		if u.Connection == "" {
			if prefix, _, ok := strings.Cut(u.ID, "|"); ok && prefix != "auth0" {
				c.Users[i].Connection = prefix
			} else {
				c.Users[i].Connection = DatabaseConnection
			}
		}
	}
	c.ACRValuesSupported = slices.Clone(c.ACRValuesSupported)
	if c.RefreshTokenLifetime <= 0 {
		c.RefreshTokenLifetime = defaultRefreshLifetime
	}
	if c.RefreshTokenIdleLifetime <= 0 {
		c.RefreshTokenIdleLifetime = defaultRefreshLifetime
	}
	if c.IDTokenLifetime <= 0 {
		c.IDTokenLifetime = defaultIDTokenLifetime
	}
	if c.AccessTokenLifetime <= 0 {
		c.AccessTokenLifetime = defaultATLifetime
	}
	if c.SessionLifetime <= 0 {
		c.SessionLifetime = defaultSessionLifetime
	}
	if c.SessionIdleLifetime <= 0 {
		c.SessionIdleLifetime = defaultSessionIdle
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// cloneJSONMap deep-copies a JSON-like map (nested maps and slices).
func cloneJSONMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneJSONValue(v)
	}
	return out
}

func cloneJSONValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneJSONMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneJSONValue(e)
		}
		return out
	}
	return v
}

// AddCallbackURL allows one more redirect_uri for the application, for tests whose
// callback server starts after the tenant (its port is not known before).
func (t *Tenant) AddCallbackURL(clientID, callbackURL string) error {
	return t.updateApp(clientID, func(a *Application) { a.CallbackURLs = append(a.CallbackURLs, callbackURL) })
}

// AddLogoutURL allows one more returnTo / post_logout_redirect_uri for the application.
func (t *Tenant) AddLogoutURL(clientID, logoutURL string) error {
	return t.updateApp(clientID, func(a *Application) { a.LogoutURLs = append(a.LogoutURLs, logoutURL) })
}

// Application returns a copy of the registered application.
func (t *Tenant) Application(clientID string) (Application, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.apps[clientID]
	if !ok {
		return Application{}, false
	}
	return *a, true
}

// updateApp replaces the application with a changed copy: handlers that already
// hold the old one keep reading an immutable value.
func (t *Tenant) updateApp(clientID string, change func(*Application)) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.apps[clientID]
	if !ok {
		return fmt.Errorf("auth0test: no application %q", clientID)
	}
	cp := *a
	cp.CallbackURLs = slices.Clone(a.CallbackURLs)
	cp.LogoutURLs = slices.Clone(a.LogoutURLs)
	change(&cp)
	t.apps[clientID] = &cp
	return nil
}
