package stepup

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stepupauth/stepup/store"
)

// Token endpoint authentication methods (Config.TokenEndpointAuthMethod).
const (
	// AuthClientSecretPost sends client_id and client_secret in the form body:
	// Auth0's default for regular web applications.
	AuthClientSecretPost = "client_secret_post"
	// AuthClientSecretBasic sends them in an HTTP Basic Authorization header.
	AuthClientSecretBasic = "client_secret_basic"
	// AuthPrivateKeyJWT sends a JWT signed with Config.ClientAssertionKey
	// (RFC 7523), no secret.
	AuthPrivateKeyJWT = "private_key_jwt"
)

// Defaults of Config.
const (
	DefaultLeeway             = 60 * time.Second
	DefaultTransactionTTL     = 10 * time.Minute
	DefaultSessionIdleTimeout = 30 * time.Minute
	DefaultSessionLifetime    = 12 * time.Hour
	DefaultHTTPTimeout        = 10 * time.Second
	DefaultStoreTimeout       = 2 * time.Second
)

// Config configures a Client. The zero value of every optional field means
// the default stated beside it. New copies the Config: changing it (or the
// slices and maps in it) afterwards has no effect on the Client.
type Config struct {
	// Domain is the tenant's domain, e.g. "fabrikam.eu.auth0.com" or a
	// custom domain; "https://" and a trailing "/" are tolerated. Required.
	Domain string
	// Issuer is the exact iss of the tenant's tokens. Default:
	// "https://" + Domain + "/", which is what Auth0 issues.
	Issuer string

	// ClientID is the application's client ID. Required.
	ClientID string
	// ClientSecret is the application's secret. Required unless
	// ClientAssertionKey is set.
	ClientSecret string
	// ClientAssertionKey, when set, authenticates the Client with
	// private_key_jwt (RFC 7523) instead of the secret: register its public
	// key with the application in Auth0. RSA, at least 2048 bits.
	ClientAssertionKey *rsa.PrivateKey
	// ClientAssertionKeyID is the kid put in the assertion's header, as
	// registered with Auth0. Default: none.
	ClientAssertionKeyID string
	// ClientAssertionAlgorithm signs the assertion: "RS256" (default),
	// "RS384" or "PS256".
	ClientAssertionAlgorithm string
	// TokenEndpointAuthMethod is how the Client authenticates to /oauth/token,
	// /oauth/par and /oauth/revoke: AuthClientSecretPost (default, Auth0's
	// default), AuthClientSecretBasic, or AuthPrivateKeyJWT (the default when
	// ClientAssertionKey is set). It must match the application's setting.
	TokenEndpointAuthMethod string

	// RedirectURL is the callback URL registered in the application's
	// "Allowed Callback URLs", served by CallbackHandler. It must be https,
	// except on a loopback host (127.0.0.1, ::1, localhost). Its scheme also
	// decides whether cookies are Secure with the __Host- prefix.
	//
	// It is required for logins. A process that only serves background jobs
	// and APIs (SessionFor, TokenSource, APIClient, CIBA, the MFA API,
	// Verifier) may leave it empty: then everything that starts or
	// completes a login (AuthorizeURL, LoginHandler, CallbackHandler,
	// Exchange, Client.StepUp, and RequireLogin/RequireStepUp when they
	// would redirect a browser) fails with an error matching
	// ErrInvalidConfig (a 500 page through ErrorHandler), cookies are
	// Secure with the __Host- prefix, and LogoutReturnURL has no default.
	RedirectURL string
	// Scopes requested at login, besides "openid" which is always sent.
	// Default: profile, email.
	Scopes []string
	// Audience is the API the login's access token is for. Default: none
	// (Auth0 then issues an opaque token for /userinfo). Client.Token,
	// TokenSourceOptions and APIConfig take "" to mean this audience.
	Audience string
	// Organization is the Auth0 organization every login is for, by id
	// ("org_...") or name (1 to 50 ASCII letters, digits, "-" and "_"),
	// sent as organization unless the app's own AuthorizeOptions.Organization
	// names another; the LoginHandler's organization parameter (which the
	// browser controls) may only repeat it (another is a 400), so a browser
	// never logs in to another organization. An app that serves several
	// organizations leaves it empty and checks Session.OrgID. The callback
	// checks the ID token against the organization sent, as Auth0's SDKs
	// do: an "org_" value must equal org_id exactly, a name must equal
	// org_name ignoring case (the tenant must then put organization names
	// in tokens); a mismatch is ErrOrganizationMismatch (403). Default:
	// none (a login for no organization; a token's org_id is then kept but
	// not checked).
	Organization string
	// IDTokenAlgorithms lists the ID-token signing algorithms accepted.
	// Default: RS256, PS256. HS256 (signed with the client secret) is
	// accepted only when listed here and ClientSecret is set.
	IDTokenAlgorithms []string

	// Store keeps authorization transactions and sessions. Default: an
	// in-memory store owned (and closed) by the Client, good for one
	// process. Replicas and workers share a Store (package redisstore).
	Store store.Store
	// StoreTimeout bounds each store call the Client makes while serving a
	// request (the middleware's session read, which moves the idle
	// deadline in the same command, the callback's transaction and session
	// writes, login and logout),
	// on top of the request's own deadline: a store that hangs then fails
	// the request closed (503) after StoreTimeout instead of holding it for
	// as long as the app's server lets it. Default: 2 s. A negative value
	// means no bound of the Client's own (only the request's context).
	// The session lookup and write that follow a redeemed code are detached
	// from the request's cancellation and deadline (the code is spent: a
	// client that disconnects must not lose its login); each of their store
	// calls is still bounded by StoreTimeout, and all of them together by
	// twice StoreTimeout or 5 s, whichever is longer. The in-process
	// memory store (a *store.Memory, the default) answers without I/O and
	// is not bounded.
	StoreTimeout time.Duration
	// KeyPrefix is put before every key the Client writes to the Store,
	// e.g. "app1:". Default: none. Printable ASCII without spaces.
	KeyPrefix string
	// SealingKeys are 32-byte AES-256 keys (raw bytes, not text: decode a
	// base64 or hex secret before putting it here) that seal tokens before
	// they reach the Store. The first seals; all open (rotation: put the new key first,
	// drop an old key once the sessions it sealed have expired). Required
	// when Store is set (every replica must share the keys); with the
	// default in-memory store, a random key is made when none is given.
	SealingKeys [][]byte

	// HTTPClient makes every request to the tenant. Default: a client with a
	// 10-second timeout. Give it a timeout: a hung tenant must not hang logins.
	HTTPClient *http.Client
	// Logger receives the Client's logs (never a token or secret). Default:
	// logs are discarded.
	Logger *slog.Logger
	// Now is the clock. Default: time.Now. Tests move an injected clock.
	Now func() time.Time
	// Leeway is the clock skew tolerated on token times (exp, iat,
	// auth_time). Default: 60 s (Auth0's). A negative value means none.
	Leeway time.Duration

	// TransactionTTL bounds the time between AuthorizeURL and the callback:
	// the transaction cookie's Max-Age and the expiry sealed in it, and the
	// longest a callback's single-use marker is kept. Default: 10 minutes.
	TransactionTTL time.Duration
	// SessionIdleTimeout ends a session that served no request for this
	// long. Default: 30 minutes. Every page load moves the deadline (the
	// record's TTL, in the same store command that reads it: no write). It
	// may not exceed SessionLifetime (ErrInvalidConfig): an idle deadline
	// past the absolute end would never apply.
	SessionIdleTimeout time.Duration
	// SessionLifetime ends a session this long after its login, whatever its
	// activity. Default: 12 hours (when SessionIdleTimeout is set above it
	// and SessionLifetime is not set, the lifetime is raised to the idle
	// timeout).
	SessionLifetime time.Duration
	// SessionCacheSize is how many sessions a Client remembers in memory
	// as it last opened them, so that a page load whose record the store
	// returns unchanged (the common case: a page load moves the record's
	// TTL, not its content) skips opening the seal and decoding the
	// record. The store is read all the same (one GetEx per page load): a
	// logout, step-up or rotation by any replica changes the bytes and is
	// seen at once; the cookie's secret is checked against the record's
	// hash at every load (the cache keeps no secret). An entry is about
	// 1 KB for a typical session (the record sealed and decoded), at most
	// about 5 KB: a session whose sealed record exceeds 2 KB (many custom
	// claims, long fields) is not cached and is opened at every load.
	// Default: 4096 (DefaultSessionCacheSize). A negative value turns the
	// cache off.
	SessionCacheSize int
	// Cookie names the cookies.
	Cookie CookieConfig

	// ConnectionPolicies adapts step-up policies to the identity provider a
	// session logged in with, keyed by the connection the ID token's sub
	// names: "auth0" for any database connection, the provider for social
	// and passwordless logins ("google-oauth2", "github", "email"), the
	// connection name for enterprise logins ("samlp|fabrikam-saml|jane" →
	// "fabrikam-saml", or "samlp" when only the strategy has an entry). The
	// connection the browser requested never chooses a session's policy
	// (see Session.Connection). See Client.PolicyFor for how a connection's
	// policy combines with a page's.
	ConnectionPolicies map[string]Policy
	// UsePAR sends the authorization request's parameters to /oauth/par
	// (RFC 9126) and puts only a request_uri in the browser's URL. It costs
	// one request to the tenant per login and needs PAR enabled in Auth0.
	UsePAR bool
	// RequireIssuerParameter rejects callbacks without an iss parameter (RFC
	// 9207). Turn it on when the tenant sends it; an iss that is present is
	// always checked.
	RequireIssuerParameter bool

	// LogoutReturnURL is where Auth0 sends the browser after logout; it must
	// be in the application's "Allowed Logout URLs". Default: the origin of
	// RedirectURL followed by "/". LogoutHandler's return_to replaces it per
	// request with a path on the app's origin (see LogoutOptions.ReturnTo).
	LogoutReturnURL string
	// LogoutEndpoint is how LogoutHandler (and LogoutURL) end the tenant's
	// session: LogoutEndpointOIDC (the default: /oidc/logout, OpenID Connect
	// RP-Initiated Logout, which every Auth0 tenant serves and Auth0
	// recommends; the ID token hint names the session to end, so the tenant
	// ends that one without a confirmation prompt) or LogoutEndpointV2
	// (/v2/logout, Auth0's older endpoint, which ends the browser's session
	// whatever it is, for apps that keep no ID token).
	LogoutEndpoint string
	// LogoutFederated also signs the user out of the identity provider
	// (federated, on either endpoint) for providers that support it. Most
	// users do not expect to be signed out of their Google account: off by
	// default.
	LogoutFederated bool
	// DefaultReturnTo is the local path a login returns to when it was not
	// started by a protected page. Default: "/".
	DefaultReturnTo string
	// ErrorHandler writes the answer when the middleware or the callback
	// fails. err matches the sentinels of this package; ErrorStatus maps it
	// to an HTTP status. Default: a plain HTML page with that status.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// BeforeSession, when set, runs on every login before anything of it
	// is stored (StartSession, and so CallbackHandler): it sees the
	// verified ID token (login.IDToken, its Claims() included) and the
	// rest of the LoginResult. An error refuses the login: nothing is
	// stored, the previous session (if any) is left as it was, and the
	// error, wrapped in ErrLoginRefused (ErrorStatus: 403; the default
	// error page shows its message, so say there what the user can do), is
	// answered through ErrorHandler. Otherwise the claims it returns are
	// kept in the session record, read back on every page with
	// Session.Claim and Session.Claims: at most MaxSessionClaims entries,
	// names of 1 to 64 bytes, and names and values together at most
	// MaxSessionClaimsSize bytes (encoded compactly; over the bounds is
	// ErrLoginRefused too, so fix the hook). They replace those of an
	// earlier login of the same session (a step-up runs the hook again).
	// A nil map keeps none. Keep them small: every page load reads them.
	BeforeSession func(ctx context.Context, login *LoginResult) (map[string]string, error)
	// Navigation decides, for a request that does not say what it is, if it
	// is a browser's page load (redirected to the login) or an API call
	// (answered 401): see RequireStepUp. It is asked only when the request
	// carries no Sec-Fetch-Mode or Sec-Fetch-Dest header (every current
	// browser sends them), no X-Requested-With, and no text/html in
	// Accept. Default: GET and HEAD requests whose Accept is absent or only
	// "*/*" (curl, Go's http.Client, wget, some browsers' first request)
	// are navigations; the rest (Accept: application/json, ...) are not.
	Navigation func(r *http.Request) bool
	// NoSilentFallback turns off the interactive retry of a silent login:
	// by default a prompt=none login that the tenant answers with
	// login_required, interaction_required or consent_required (no tenant
	// session, or one that needs the user) is started again without
	// prompt=none, to the same return path, instead of ending on the error
	// page. With NoSilentFallback, the error is answered through
	// ErrorHandler (403, an *AuthorizeError).
	NoSilentFallback bool
	// Events, when set, receives an audit event for each login, step-up,
	// API challenge, refresh, out-of-band step-up and logout (see Event),
	// synchronously, on the goroutine that did the work: keep it fast and
	// never block in it (hand slow work to a goroutine or a queue). An
	// event never holds a token, a code, a cookie or a secret. Default: no
	// hook (the events are still logged, see Event).
	Events func(ctx context.Context, e Event)
}

// CookieConfig names the Client's cookies. On https (see Config.RedirectURL)
// the names get the "__Host-" prefix and the cookies are Secure; they are
// always HttpOnly, SameSite=Lax and Path=/.
type CookieConfig struct {
	// Session is the session cookie's name. Default: "stepup_session".
	Session string
	// Transaction names the cookies that carry pending authorizations, one
	// per login in progress: "<Transaction>_<8 characters>" (see
	// Client.TransactionCookieName). Default: "stepup_tx".
	Transaction string
}

// Client is a relying party of one Auth0 application: it builds
// authorization URLs, redeems callbacks, keeps sessions in its Store and
// serves net/http middleware. It is safe for concurrent use. Call Close when
// done.
type Client struct {
	cfg Config // normalized copy

	issuer    string
	authURL   string
	tokenURL  string
	parURL    string
	revokeURL string
	logoutURL string
	// oidcLogoutURL is /oidc/logout; origin is the app's origin (that of
	// RedirectURL, normalized), which sign-outs must come from.
	oidcLogoutURL string
	origin        string

	authMethod string
	httpClient *http.Client
	log        *slog.Logger
	now        func() time.Time

	store    store.Store
	ownStore *store.Memory // the default store, closed by Close
	ring     *keyRing
	sessions *sessionCache // nil: off (Config.SessionCacheSize < 0)
	keys     *keySet
	idv      *idTokenVerifier

	secure        bool
	sessionCookie string

	unreadableLog unreadableLog // rate limit of the log of unreadable records (records.go)
	localStore    bool          // store is a *store.Memory: no StoreTimeout bound (storectx.go)

	closeOnce sync.Once
}

// New makes a Client. It does no network I/O: the tenant's keys are fetched
// on first use (and refetched, with back-off, while the tenant is
// unreachable), so a Client can start while the tenant is down. A Config that
// cannot work fails here with an error matching ErrInvalidConfig that says
// what to fix.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg = cloneConfig(cfg)
	c := &Client{}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}

	host, err := parseDomain(cfg.Domain)
	if err != nil {
		return nil, bad("%v", err)
	}
	cfg.Domain = host
	base := "https://" + host
	if cfg.Issuer == "" {
		cfg.Issuer = base + "/"
	} else if u, err := url.Parse(cfg.Issuer); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, bad("Issuer %q must be an https URL such as %q", cfg.Issuer, base+"/")
	}
	c.issuer = cfg.Issuer
	c.authURL = base + "/authorize"
	c.tokenURL = base + "/oauth/token"
	c.parURL = base + "/oauth/par"
	c.revokeURL = base + "/oauth/revoke"
	c.logoutURL = base + "/v2/logout"
	c.oidcLogoutURL = base + "/oidc/logout"

	if strings.TrimSpace(cfg.ClientID) == "" {
		return nil, bad("ClientID is required: copy it from the application's settings in the Auth0 dashboard")
	}
	switch cfg.TokenEndpointAuthMethod {
	case "":
		if cfg.ClientAssertionKey != nil {
			cfg.TokenEndpointAuthMethod = AuthPrivateKeyJWT
		} else {
			cfg.TokenEndpointAuthMethod = AuthClientSecretPost
		}
	case AuthClientSecretPost, AuthClientSecretBasic, AuthPrivateKeyJWT:
	default:
		return nil, bad("TokenEndpointAuthMethod %q is not supported: use %q, %q or %q",
			cfg.TokenEndpointAuthMethod, AuthClientSecretPost, AuthClientSecretBasic, AuthPrivateKeyJWT)
	}
	c.authMethod = cfg.TokenEndpointAuthMethod
	if c.authMethod == AuthPrivateKeyJWT {
		if cfg.ClientAssertionKey == nil {
			return nil, bad("TokenEndpointAuthMethod %q needs ClientAssertionKey (the RSA private key whose public key is registered with the application)", AuthPrivateKeyJWT)
		}
		if err := cfg.ClientAssertionKey.Validate(); err != nil {
			return nil, bad("ClientAssertionKey is not a valid RSA key: %v", err)
		}
		if bits := cfg.ClientAssertionKey.N.BitLen(); bits < 2048 {
			return nil, bad("ClientAssertionKey has %d bits; use an RSA key of at least 2048 bits", bits)
		}
		switch cfg.ClientAssertionAlgorithm {
		case "":
			cfg.ClientAssertionAlgorithm = "RS256"
		case "RS256", "RS384", "PS256":
		default:
			return nil, bad("ClientAssertionAlgorithm %q is not supported: use RS256, RS384 or PS256", cfg.ClientAssertionAlgorithm)
		}
	} else if cfg.ClientSecret == "" {
		return nil, bad("ClientSecret is required with %s: copy it from the application's settings, or set ClientAssertionKey to use private_key_jwt", c.authMethod)
	}

	ru, err := url.Parse(cfg.RedirectURL)
	switch {
	case cfg.RedirectURL == "":
		// A worker-only process: logins fail (see Config.RedirectURL).
		c.secure = true
	case err != nil || ru.Host == "" || ru.Fragment != "" || ru.User != nil:
		return nil, bad("RedirectURL %q must be an absolute URL without fragment or user info, such as https://app.example.com/callback", cfg.RedirectURL)
	case ru.Scheme == "https":
		c.secure = true
	case ru.Scheme == "http" && isLoopback(ru.Hostname()):
	default:
		return nil, bad("RedirectURL %q must use https (http is allowed only on 127.0.0.1, ::1 or localhost)", cfg.RedirectURL)
	}
	if cfg.LogoutReturnURL == "" {
		if cfg.RedirectURL != "" {
			cfg.LogoutReturnURL = ru.Scheme + "://" + ru.Host + "/"
		}
	} else if u, err := url.Parse(cfg.LogoutReturnURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, bad("LogoutReturnURL %q must be an absolute http(s) URL listed in the application's Allowed Logout URLs", cfg.LogoutReturnURL)
	}
	c.origin, _ = normalizeOrigin(ru.Scheme + "://" + ru.Host)
	switch cfg.LogoutEndpoint {
	case "":
		cfg.LogoutEndpoint = LogoutEndpointOIDC
	case LogoutEndpointOIDC, LogoutEndpointV2:
	default:
		return nil, bad("LogoutEndpoint %q: use %q (/oidc/logout, the default) or %q (/v2/logout)", cfg.LogoutEndpoint, LogoutEndpointOIDC, LogoutEndpointV2)
	}
	if cfg.DefaultReturnTo == "" {
		cfg.DefaultReturnTo = "/"
	} else if err := checkReturnTo(cfg.DefaultReturnTo); err != nil {
		return nil, bad("DefaultReturnTo: %v", err)
	}

	if cfg.Scopes == nil {
		cfg.Scopes = []string{"profile", "email"}
	}
	for _, s := range cfg.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return nil, bad("Scopes: %q is not a scope token (no spaces or quotes; one scope per element)", s)
		}
	}
	cfg.Scopes = scopeList(cfg.Scopes, nil)

	for _, a := range cfg.IDTokenAlgorithms {
		switch a {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512":
		case "HS256":
			if cfg.ClientSecret == "" {
				return nil, bad("IDTokenAlgorithms lists HS256, which needs ClientSecret (Auth0 signs HS256 ID tokens with it)")
			}
		default:
			return nil, bad("IDTokenAlgorithms: %q is not an acceptable ID-token signing algorithm (Auth0 uses RS256, PS256 or HS256)", a)
		}
	}

	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultLeeway
	case cfg.Leeway < 0:
		cfg.Leeway = 0
	case cfg.Leeway > 10*time.Minute:
		return nil, bad("Leeway %s is too large: clock skew tolerance should be seconds, at most 10 minutes", cfg.Leeway)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"TransactionTTL", &cfg.TransactionTTL, DefaultTransactionTTL},
		{"SessionIdleTimeout", &cfg.SessionIdleTimeout, DefaultSessionIdleTimeout},
		{"SessionLifetime", &cfg.SessionLifetime, max(DefaultSessionLifetime, cfg.SessionIdleTimeout)},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < time.Second {
			return nil, bad("%s %s must be at least one second (0 means the default, %s)", d.name, *d.v, d.def)
		}
	}
	switch {
	case cfg.StoreTimeout == 0:
		cfg.StoreTimeout = DefaultStoreTimeout
	case cfg.StoreTimeout < 0:
		cfg.StoreTimeout = -1
	}
	if cfg.SessionIdleTimeout > cfg.SessionLifetime {
		return nil, bad("SessionIdleTimeout %s is longer than SessionLifetime %s: a session ends at SessionLifetime whatever its activity, so the idle timeout would never apply; shorten it or raise SessionLifetime",
			cfg.SessionIdleTimeout, cfg.SessionLifetime)
	}
	if cfg.Organization != "" {
		if err := checkName(cfg.Organization, maxOrganizationLen, "-_"); err != nil {
			return nil, bad("Organization: %v (an organization id such as org_abc123 or its name)", err)
		}
	}
	for _, ch := range cfg.KeyPrefix {
		if ch <= ' ' || ch > '~' {
			return nil, bad("KeyPrefix %q must be printable ASCII without spaces", cfg.KeyPrefix)
		}
	}
	if len(cfg.KeyPrefix) > 64 {
		return nil, bad("KeyPrefix is %d bytes; keep it under 64", len(cfg.KeyPrefix))
	}

	for name, p := range cfg.ConnectionPolicies {
		if name == "" {
			return nil, bad("ConnectionPolicies has an empty connection name")
		}
		if p.MaxAge < 0 {
			return nil, bad("ConnectionPolicies[%q].MaxAge is negative", name)
		}
	}

	// Cookies.
	if cfg.Cookie.Session == "" {
		cfg.Cookie.Session = "stepup_session"
	}
	if cfg.Cookie.Transaction == "" {
		cfg.Cookie.Transaction = "stepup_tx"
	}
	for _, n := range []string{cfg.Cookie.Session, cfg.Cookie.Transaction} {
		if !validCookieName(n) || strings.HasPrefix(n, "__") {
			return nil, bad("cookie name %q is not a valid cookie name (letters, digits, - and _; no __ prefix: the Client adds __Host- itself on https)", n)
		}
	}
	if len(cfg.Cookie.Transaction) > 32 {
		return nil, bad("Cookie.Transaction %q is longer than 32 bytes (each transaction cookie's name adds 9)", cfg.Cookie.Transaction)
	}
	if strings.HasPrefix(cfg.Cookie.Session, cfg.Cookie.Transaction+"_") || cfg.Cookie.Session == cfg.Cookie.Transaction {
		return nil, bad("Cookie.Session must differ from Cookie.Transaction and not start with it and \"_\"")
	}
	c.sessionCookie = cfg.Cookie.Session
	if c.secure {
		c.sessionCookie = "__Host-" + c.sessionCookie
	}

	// Store and sealing keys.
	keys := cfg.SealingKeys
	if len(keys) == 0 {
		if cfg.Store != nil {
			return nil, bad("SealingKeys is required with a Store: every replica sharing the Store must seal records with the same 32-byte keys, given as raw bytes (generate a secret with: head -c32 /dev/urandom | base64, keep it in your secret store, and base64-decode it into SealingKeys)")
		}
		k := make([]byte, sealKeyLen)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("stepup: crypto/rand: %w", err)
		}
		keys = [][]byte{k}
	}
	for i, k := range keys {
		if n := len(k); n == 43 || n == 44 || n == 64 {
			return nil, bad("SealingKeys[%d] is %d bytes, the length of a 32-byte key written as base64 or hex text: SealingKeys takes the raw 32 bytes, so decode the text first (base64.StdEncoding.DecodeString, hex.DecodeString)", i, n)
		}
	}
	if c.ring, err = newKeyRing(keys); err != nil {
		return nil, bad("%v", err)
	}
	switch {
	case cfg.SessionCacheSize == 0:
		c.sessions = newSessionCache(DefaultSessionCacheSize)
	case cfg.SessionCacheSize > 0:
		c.sessions = newSessionCache(cfg.SessionCacheSize)
	}

	if cfg.ErrorHandler == nil {
		cfg.ErrorHandler = DefaultErrorHandler
	}

	c.cfg = cfg
	c.httpClient = cfg.HTTPClient
	c.log = cfg.Logger
	c.now = cfg.Now

	c.keys = newKeySet(base+"/.well-known/jwks.json", c.httpClient, c.now)
	c.idv = newIDTokenVerifier(idTokenConfig{
		Issuer:       c.issuer,
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Algorithms:   cfg.IDTokenAlgorithms,
		Keys:         c.keys,
		Now:          c.now,
		Leeway:       cfg.Leeway,
	})

	if cfg.Store == nil {
		c.ownStore = store.NewMemory(store.MemoryOptions{Now: cfg.Now})
		c.store = c.ownStore
	} else {
		c.store = cfg.Store
	}
	_, c.localStore = c.store.(*store.Memory)
	return c, nil
}

// Close stops the Client's background work (the key set's refresh, the
// default store's sweep) and empties its session cache. It does not close a
// Store given in Config. Close is idempotent; the Client must not be used
// after it.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.keys.Close()
		c.sessions.clear()
		if c.ownStore != nil {
			err = errors.Join(err, c.ownStore.Close())
		}
	})
	return err
}

// errNoRedirectURL is what starting or completing a login answers on a
// Client made without Config.RedirectURL (a worker-only process).
var errNoRedirectURL = fmt.Errorf("%w: this Client has no RedirectURL, so it cannot start or complete a login (set Config.RedirectURL in the process that serves the browser)", ErrInvalidConfig)

// canLogin is nil when the Client can start and complete logins.
func (c *Client) canLogin() error {
	if c.cfg.RedirectURL == "" {
		return errNoRedirectURL
	}
	return nil
}

// Issuer returns the tenant's issuer, e.g. "https://fabrikam.eu.auth0.com/".
func (c *Client) Issuer() string { return c.issuer }

func cloneConfig(cfg Config) Config {
	cfg.Scopes = slices.Clone(cfg.Scopes)
	cfg.IDTokenAlgorithms = slices.Clone(cfg.IDTokenAlgorithms)
	if cfg.SealingKeys != nil {
		keys := make([][]byte, len(cfg.SealingKeys))
		for i, k := range cfg.SealingKeys {
			keys[i] = slices.Clone(k)
		}
		cfg.SealingKeys = keys
	}
	if cfg.ConnectionPolicies != nil {
		m := make(map[string]Policy, len(cfg.ConnectionPolicies))
		for k, p := range cfg.ConnectionPolicies {
			m[k] = clonePolicy(p)
		}
		cfg.ConnectionPolicies = m
	}
	return cfg
}

func clonePolicy(p Policy) Policy {
	p.ACR = slices.Clone(p.ACR)
	p.AMR = slices.Clone(p.AMR)
	p.Scopes = slices.Clone(p.Scopes)
	return p
}

// parseDomain accepts "host[:port]", optionally with "https://" and a
// trailing "/", and returns "host[:port]".
func parseDomain(d string) (string, error) {
	orig := d
	if d == "" {
		return "", errors.New(`Domain is required: the tenant's domain, e.g. "fabrikam.eu.auth0.com"`)
	}
	d = strings.TrimPrefix(d, "https://")
	d = strings.TrimSuffix(d, "/")
	if strings.Contains(d, "://") {
		return "", fmt.Errorf("Domain %q: Auth0 is reached over https only; give the bare domain, e.g. \"fabrikam.eu.auth0.com\"", orig)
	}
	u, err := url.Parse("https://" + d)
	if err != nil || u.Host != d || u.Hostname() == "" || strings.ContainsAny(d, "/?#@ \\") {
		return "", fmt.Errorf("Domain %q must be a bare domain (host and optional port), e.g. \"fabrikam.eu.auth0.com\"", orig)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("Domain %q has an invalid port", orig)
		}
	}
	return d, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validCookieName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, ch := range n {
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-', ch == '_':
		default:
			return false
		}
	}
	return true
}

// scopeList returns "openid" followed by the scopes of a and b, without duplicates.
func scopeList(a, b []string) []string {
	out := make([]string, 0, 1+len(a)+len(b))
	out = append(out, "openid")
	for _, l := range [][]string{a, b} {
		for _, s := range l {
			if s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientAssertion returns a private_key_jwt client assertion (RFC 7523):
// iss = sub = client_id, aud = the tenant's issuer, a random jti, and an
// expiry one minute away (Auth0's limit).
func (c *Client) clientAssertion() (string, error) {
	now := c.now()
	header := map[string]any{"alg": c.cfg.ClientAssertionAlgorithm, "typ": "JWT"}
	if c.cfg.ClientAssertionKeyID != "" {
		header["kid"] = c.cfg.ClientAssertionKeyID
	}
	claims := map[string]any{
		"iss": c.cfg.ClientID,
		"sub": c.cfg.ClientID,
		"aud": c.issuer,
		"iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(),
		"jti": randomToken(),
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signingInput := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	var sig []byte
	key := c.cfg.ClientAssertionKey
	switch c.cfg.ClientAssertionAlgorithm {
	case "RS256":
		d := sha256.Sum256([]byte(signingInput))
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	case "RS384":
		d := sha512.Sum384([]byte(signingInput))
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA384, d[:])
	case "PS256":
		d := sha256.Sum256([]byte(signingInput))
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	if err != nil {
		return "", fmt.Errorf("stepup: signing the client assertion: %w", err)
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// postForm posts an authenticated form to one of the tenant's endpoints
// (/oauth/par, /oauth/revoke) and returns the body of a 2xx answer. Other
// answers and transport failures are *TenantError.
func (c *Client) postForm(ctx context.Context, endpoint, target string, form url.Values) (int, []byte, error) {
	form = cloneValues(form)
	basic, err := c.authenticateForm(form)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, &TenantError{Endpoint: endpoint, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic != "" {
		req.Header.Set("Authorization", basic)
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return 0, nil, &TenantError{Endpoint: endpoint, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, &TenantError{Endpoint: endpoint, Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, nil, tenantErrorFromBody(endpoint, resp, body)
	}
	return resp.StatusCode, body, nil
}

// authenticateForm adds the Client's authentication to a form sent to the
// tenant: client_id, and client_secret or a client assertion. With
// client_secret_basic it returns the Authorization header's value instead
// (RFC 6749 2.3.1: both parts form-encoded), "" otherwise.
func (c *Client) authenticateForm(form url.Values) (basic string, err error) {
	form.Set("client_id", c.cfg.ClientID)
	switch c.authMethod {
	case AuthClientSecretPost:
		form.Set("client_secret", c.cfg.ClientSecret)
	case AuthClientSecretBasic:
		cred := url.QueryEscape(c.cfg.ClientID) + ":" + url.QueryEscape(c.cfg.ClientSecret)
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(cred)), nil
	case AuthPrivateKeyJWT:
		a, err := c.clientAssertion()
		if err != nil {
			return "", err
		}
		form.Set("client_assertion_type", clientAssertionType)
		form.Set("client_assertion", a)
	}
	return "", nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v)+4)
	for k, vv := range v {
		out[k] = slices.Clone(vv)
	}
	return out
}

// tenantErrorFromBody decodes an OAuth error answer.
func tenantErrorFromBody(endpoint string, resp *http.Response, body []byte) *TenantError {
	te := &TenantError{Endpoint: endpoint, StatusCode: resp.StatusCode}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		MFAToken    string `json:"mfa_token"`
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" || json.Valid(body) {
		if json.Unmarshal(body, &e) == nil {
			te.Code, te.Description, te.MFAToken = e.Error, e.Description, e.MFAToken
		}
	}
	if te.Code == "" {
		te.Code = http.StatusText(resp.StatusCode)
	}
	te.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	return te
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// randomToken returns 256 random bits, base64url without padding (43 characters).
func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("stepup: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// randomTokenLen is the length of a randomToken.
const randomTokenLen = 43

// isRandomToken reports whether s looks like a randomToken: 43 base64url characters.
func isRandomToken(s string) bool {
	if len(s) != randomTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !base64URLByte[s[i]] {
			return false
		}
	}
	return true
}

// base64URLByte says which bytes are in the base64url alphabet.
var base64URLByte = func() (t [256]bool) {
	for ch := range 256 {
		t[ch] = ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_'
	}
	return t
}()

// Verifier returns a verifier of access tokens issued by the Client's tenant
// for audience (an API identifier), sharing the Client's cache of the
// tenant's signing keys: one JWKS fetch serves ID and access tokens alike,
// so an API served by the same process costs the tenant no extra fetch. It
// uses the Client's issuer, HTTP client, clock and leeway; opts set the rest
// of what NewVerifier's VerifierConfig offers (WithClaimNamespace,
// WithCacheSize, WithAlgorithms, WithVerifierErrorHandler). Closing the
// Verifier is not needed: the Client's Close stops the shared key refresh.
func (c *Client) Verifier(audience string, opts ...VerifierOption) (*Verifier, error) {
	if audience == "" {
		return nil, fmt.Errorf("%w: Verifier needs the API's audience (its identifier in Auth0)", ErrInvalidConfig)
	}
	cfg := VerifierConfig{
		Domain:     c.cfg.Domain,
		Audience:   audience,
		Issuer:     c.issuer,
		JWKSURL:    c.keys.url,
		HTTPClient: c.httpClient,
		Now:        c.now,
		Leeway:     c.cfg.Leeway,
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = -1 // the Client was configured with none
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return newVerifier(cfg, c.keys)
}

// A VerifierOption sets a field of the VerifierConfig of Client.Verifier.
type VerifierOption func(*VerifierConfig)

// WithClaimNamespace sets VerifierConfig.ClaimNamespace: where an Action
// copies acr, amr and auth_time in access tokens, e.g. "https://stepup.example/".
func WithClaimNamespace(ns string) VerifierOption {
	return func(cfg *VerifierConfig) { cfg.ClaimNamespace = ns }
}

// WithCacheSize sets VerifierConfig.CacheSize: the number of verified tokens
// kept (0: no cache).
func WithCacheSize(n int) VerifierOption {
	return func(cfg *VerifierConfig) { cfg.CacheSize = n }
}

// WithAlgorithms sets VerifierConfig.Algorithms: the accepted header algs
// (default RS256 and PS256).
func WithAlgorithms(algs ...string) VerifierOption {
	algs = slices.Clone(algs)
	return func(cfg *VerifierConfig) { cfg.Algorithms = algs }
}

// WithVerifierErrorHandler sets VerifierConfig.ErrorHandler: called by
// Require's middleware after it refused a request, e.g. to log err.
func WithVerifierErrorHandler(f func(w http.ResponseWriter, r *http.Request, err error)) VerifierOption {
	return func(cfg *VerifierConfig) { cfg.ErrorHandler = f }
}
