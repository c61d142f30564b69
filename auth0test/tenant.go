package auth0test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tenant is a running dev tenant: an HTTPS server on loopback that speaks Auth0's
// Authentication API. Create one with NewTenant (tests) or Start (programs).
type Tenant struct {
	cfg    Config
	ln     net.Listener
	srv    *http.Server
	url    string
	domain string
	caPEM  []byte
	pool   *x509.CertPool
	done   chan struct{} // closed when Close starts; ends fault delays
	closed sync.Once

	handler http.Handler

	mu sync.Mutex // guards every field below
	// directory (copied from cfg; users change on recovery-code use)
	apps  map[string]*Application
	apis  map[string]*API
	users []*User
	conns map[string]Connection
	// signing keys: current signs, next is published ahead, previous stays
	// published until RevokePreviousKey.
	current, next, previous *signingKey
	sessions                map[string]*session // by cookie value
	txs                     map[string]*loginTx // by state of the hosted pages
	codes                   map[string]*authCode
	refreshTokens           map[string]*refreshToken
	families                map[string]*family
	refreshLog              []RefreshEvent
	mfaTokens               map[string]*mfaGrant
	oobChallenges           map[string]*oobChallenge
	pars                    map[string]*parRequest
	ciba                    map[string]*cibaRequest
	faults                  map[string]*Fault
	forge                   func(header, claims map[string]any)
	calls                   map[string]int
	grantCalls              map[string]int
	requests                int
	usedJTIs                map[string]time.Time // client assertions seen, until their exp
	opaque                  map[string]*opaqueToken
	enrollments             map[string]*enrollment // pending MFA API enrollments by user id
	limits                  map[string]*rateWindow
	deliveries              []LogoutDelivery
	deliveryFaults          map[string]*DeliveryFault
	logouts                 map[string]*pendingLogout // /oidc/logout confirmations
	deliveryClient          *http.Client
	grants                  map[string][]string // consented scopes by "user client"
	started                 time.Time           // the tenant's clock at Start (configured factors date from it)
	factors                 map[string]*factorState
	userUpdated             map[string]time.Time
	tickets                 map[string]*enrollTicket // Guardian enrollment tickets by id
	mgmtTokenCalls          int
	orgs                    []*Organization
	invitations             map[string]*invitation
}

// maxCountedPaths bounds the per-path call counters; further paths are
// counted together under otherPaths.
const (
	maxCountedPaths = 256
	otherPaths      = "(other paths)"
)

// NewTenant starts a tenant for a test and closes it with t.Cleanup. It calls
// t.Fatal if the tenant cannot start.
func NewTenant(t testing.TB, cfg Config) *Tenant {
	t.Helper()
	tn, err := Start(cfg)
	if err != nil {
		t.Fatalf("auth0test: start tenant: %v", err)
	}
	t.Cleanup(tn.Close)
	return tn
}

// Start starts a tenant for a program (the demo). Call Close when done.
func Start(cfg Config) (*Tenant, error) {
	cfg = cfg.withDefaults()
	t := &Tenant{
		cfg:            cfg,
		done:           make(chan struct{}),
		apps:           map[string]*Application{},
		apis:           map[string]*API{},
		conns:          map[string]Connection{},
		sessions:       map[string]*session{},
		txs:            map[string]*loginTx{},
		codes:          map[string]*authCode{},
		refreshTokens:  map[string]*refreshToken{},
		families:       map[string]*family{},
		mfaTokens:      map[string]*mfaGrant{},
		oobChallenges:  map[string]*oobChallenge{},
		pars:           map[string]*parRequest{},
		ciba:           map[string]*cibaRequest{},
		faults:         map[string]*Fault{},
		calls:          map[string]int{},
		grantCalls:     map[string]int{},
		usedJTIs:       map[string]time.Time{},
		opaque:         map[string]*opaqueToken{},
		enrollments:    map[string]*enrollment{},
		limits:         map[string]*rateWindow{},
		deliveryFaults: map[string]*DeliveryFault{},
		logouts:        map[string]*pendingLogout{},
		grants:         map[string][]string{},
		deliveryClient: cfg.BackChannelLogoutClient,
		started:        cfg.Now(),
		factors:        map[string]*factorState{},
		userUpdated:    map[string]time.Time{},
		tickets:        map[string]*enrollTicket{},
		invitations:    map[string]*invitation{},
	}
	if t.deliveryClient == nil {
		t.deliveryClient = newDeliveryClient(cfg.BackChannelLogoutCAs)
	}
	for i := range cfg.Applications {
		a := &cfg.Applications[i]
		if a.ClientID == "" {
			return nil, fmt.Errorf("auth0test: application %d (%q) has no ClientID", i, a.Name)
		}
		if _, dup := t.apps[a.ClientID]; dup {
			return nil, fmt.Errorf("auth0test: duplicate application client id %q", a.ClientID)
		}
		switch a.OrganizationUsage {
		case OrganizationDeny, OrganizationAllow, OrganizationRequire:
		default:
			return nil, fmt.Errorf("auth0test: application %q: unsupported organization usage %q", a.ClientID, a.OrganizationUsage)
		}
		switch a.TokenEndpointAuthMethod {
		case "client_secret_post", "client_secret_basic", "none":
		case "private_key_jwt":
			if len(a.ClientAssertionKeys) == 0 {
				return nil, fmt.Errorf("auth0test: application %q: private_key_jwt needs ClientAssertionKeys", a.ClientID)
			}
		default:
			return nil, fmt.Errorf("auth0test: application %q: unsupported token endpoint auth method %q", a.ClientID, a.TokenEndpointAuthMethod)
		}
		if err := checkBackChannelURLs(*a); err != nil {
			return nil, err
		}
		switch a.IDTokenAlg {
		case "RS256":
		case "HS256":
			if a.ClientSecret == "" {
				return nil, fmt.Errorf("auth0test: application %q: HS256 needs a client secret", a.ClientID)
			}
		default:
			return nil, fmt.Errorf("auth0test: application %q: unsupported ID token alg %q", a.ClientID, a.IDTokenAlg)
		}
		t.apps[a.ClientID] = a
	}
	for i := range cfg.APIs {
		a := &cfg.APIs[i]
		if a.Identifier == "" {
			return nil, fmt.Errorf("auth0test: API %d has no Identifier", i)
		}
		t.apis[a.Identifier] = a
	}
	for _, c := range cfg.Connections {
		t.conns[c.Name] = c
	}
	for i := range cfg.Users {
		u := cfg.Users[i]
		if u.ID == "" || u.Email == "" {
			return nil, fmt.Errorf("auth0test: user %d needs an ID and an Email", i)
		}
		if _, ok := t.conns[u.Connection]; !ok {
			return nil, fmt.Errorf("auth0test: user %q: unknown connection %q", u.ID, u.Connection)
		}
		if u.TOTPSecret != "" {
			if _, err := decodeBase32(u.TOTPSecret); err != nil {
				return nil, fmt.Errorf("auth0test: user %q: TOTP secret: %w", u.ID, err)
			}
		}
		t.users = append(t.users, &u)
	}
	var err error
	if t.current, err = newSigningKey(); err != nil {
		return nil, err
	}
	// The next key is generated when first needed (JWKS, rotation): RSA key
	// generation dominates a tenant's start-up.

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("auth0test: listen: %w", err)
	}
	issue := newCertificates
	if cfg.CA != nil {
		issue = cfg.CA.issue
	}
	tlsCert, caPEM, pool, err := issue(ln.Addr().(*net.TCPAddr).IP)
	if err != nil {
		ln.Close()
		return nil, err
	}
	t.ln = ln
	t.caPEM = caPEM
	t.pool = pool
	t.domain = ln.Addr().String()
	t.url = "https://" + t.domain
	// The MFA API's audience (Auth0 defines it on every tenant): tokens for it
	// enroll, list and remove the user's authenticators.
	if _, ok := t.apis[t.mfaAudience()]; !ok {
		t.apis[t.mfaAudience()] = &API{Identifier: t.mfaAudience(), SigningAlg: "RS256",
			Scopes: []string{"enroll", "read:authenticators", "remove:authenticators"}, AccessTokenLifetime: mfaTokenLifetime}
	}
	// The Management API's audience, for client-credentials tokens of the
	// applications granted ManagementScopes.
	t.apis[t.managementAudience()] = &API{Identifier: t.managementAudience(), SigningAlg: "RS256",
		Scopes: managementAPIScopes, AccessTokenLifetime: managementTokenLifetime}
	if err := t.addOrganizations(cfg.Organizations); err != nil {
		ln.Close()
		return nil, err
	}
	t.handler = t.routes()
	t.srv = &http.Server{
		Handler:           t,
		ReadHeaderTimeout: 10 * time.Second,
		// HTTP/1.1 only: dropped connections (Fault.Drop) need http.Hijacker.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12},
		ErrorLog:     slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	go t.srv.ServeTLS(ln, "", "")
	return t, nil
}

// Close shuts the tenant down, waiting for in-flight requests. It is safe to call
// more than once.
func (t *Tenant) Close() {
	t.closed.Do(func() {
		close(t.done)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := t.srv.Shutdown(ctx); err != nil {
			t.srv.Close()
		}
	})
}

// URL is the tenant's base URL, "https://127.0.0.1:PORT" (no trailing slash).
func (t *Tenant) URL() string { return t.url }

// Domain is the tenant's domain as go-auth0 wants it: "127.0.0.1:PORT".
func (t *Tenant) Domain() string { return t.domain }

// Issuer is the issuer of the tenant's tokens, "https://127.0.0.1:PORT/" (with
// Auth0's trailing slash).
func (t *Tenant) Issuer() string { return t.url + "/" }

// CACertPEM is the PEM of the CA that issued the tenant's certificate, for
// processes configured with SSL_CERT_FILE.
func (t *Tenant) CACertPEM() []byte { return append([]byte(nil), t.caPEM...) }

// CertPool holds the tenant's CA.
func (t *Tenant) CertPool() *x509.CertPool { return t.pool.Clone() }

// Client returns a new *http.Client that trusts the tenant's certificate. Each call
// returns a fresh client and transport, because go-auth0 wraps the client it is
// given in place.
func (t *Tenant) Client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: t.pool, MinVersion: tls.VersionTLS12},
			Proxy:               nil,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		},
		Timeout: 30 * time.Second,
	}
}

// Now is the tenant's clock (Config.Now).
func (t *Tenant) Now() time.Time { return t.cfg.Now() }

// ServeHTTP serves the tenant's endpoints; it is exported so that a test can also
// drive the tenant in-process (for example with httptest.NewRecorder).
func (t *Tenant) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			t.cfg.Logger.Error("auth0test: handler panic", "path", r.URL.Path, "panic", p)
			writeError(w, http.StatusInternalServerError, "server_error", "internal error")
		}
	}()
	path := r.URL.Path
	grant := ""
	if path == "/oauth/token" && r.Method == http.MethodPost {
		grant = grantTypeOf(r)
	}
	t.mu.Lock()
	counted := path
	if _, known := t.calls[path]; !known && len(t.calls) >= maxCountedPaths {
		counted = otherPaths // random paths must not grow the counters without bound
	}
	t.calls[counted]++
	var expired []session
	if t.requests++; t.requests%sweepEvery == 0 {
		expired = t.sweepLocked(t.cfg.Now())
	}
	if grant != "" {
		t.grantCalls[grant]++
	}
	withinLimit := t.rateLimitLocked(path, w.Header(), t.cfg.Now())
	f, faulty := t.faults[path]
	var fault Fault
	if faulty {
		fault = *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				delete(t.faults, path)
			}
		}
	}
	t.mu.Unlock()
	t.deliverLogouts(r, expired, InitiatorSessionExpired)
	t.cfg.Logger.Debug("auth0test: request", "method", r.Method, "path", path)
	if !withinLimit {
		writeError(w, http.StatusTooManyRequests, "too_many_requests", "Global limit has been reached")
		return
	}
	if faulty {
		if fault.Delay > 0 {
			timer := time.NewTimer(fault.Delay)
			select {
			case <-timer.C:
			case <-r.Context().Done():
				// The client gave up: close without an answer (a plain return would
				// let the server write an empty 200).
				timer.Stop()
				panic(http.ErrAbortHandler)
			case <-t.done:
				timer.Stop()
			}
		}
		if fault.Drop {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		if fault.Status != 0 {
			body := fault.Body
			if body == "" {
				body = fmt.Sprintf(`{"error":"%s","error_description":"injected fault"}`, faultCode(fault.Status))
			}
			for k, v := range fault.Header {
				w.Header()[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
			}
			w.Header().Set("Content-Type", "application/json")
			if fault.Status == http.StatusTooManyRequests && fault.RetryAfter > 0 {
				w.Header().Set("Retry-After", fmt.Sprint(int(fault.RetryAfter/time.Second)))
			}
			w.WriteHeader(fault.Status)
			_, _ = w.Write([]byte(body))
			return
		}
	}
	t.handler.ServeHTTP(w, r)
}

func faultCode(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "too_many_requests"
	case status >= 500:
		return "server_error"
	default:
		return strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
	}
}

func (t *Tenant) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", t.handleDiscovery)
	mux.HandleFunc("/.well-known/jwks.json", t.handleJWKS)
	mux.HandleFunc("/authorize", t.handleAuthorize)
	mux.HandleFunc("/u/login", t.handleLoginPage)
	mux.HandleFunc("/u/social", t.handleSocialPage)
	mux.HandleFunc("/u/mfa-otp-challenge", t.handleOTPPage)
	mux.HandleFunc("/u/mfa-recovery-code-challenge", t.handleRecoveryCodePage)
	mux.HandleFunc("/u/consent", t.handleConsentPage)
	mux.HandleFunc("/oauth/token", t.handleToken)
	mux.HandleFunc("/oauth/revoke", t.handleRevoke)
	mux.HandleFunc("/oauth/par", t.handlePAR)
	mux.HandleFunc("/userinfo", t.handleUserinfo)
	mux.HandleFunc("/bc-authorize", t.handleBCAuthorize)
	mux.HandleFunc("/auth0test/ciba", t.handleCIBAPage)
	mux.HandleFunc("/mfa/challenge", t.handleMFAChallenge)
	mux.HandleFunc("/mfa/authenticators", t.handleMFAAuthenticators)
	mux.HandleFunc("/mfa/authenticators/", t.handleMFAAuthenticator)
	mux.HandleFunc("/mfa/associate", t.handleMFAAssociate)
	mux.HandleFunc("/v2/logout", t.handleV2Logout)
	mux.HandleFunc("/oidc/logout", t.handleOIDCLogout)
	mux.HandleFunc("/u/logout", t.handleLogoutConfirm)
	mux.HandleFunc("/u/guardian/enroll", t.handleEnrollPage)
	mux.HandleFunc("/api/v2/", t.handleManagement)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "Not Found")
	})
	return mux
}

// newCertificates makes a CA and a server certificate for ip (and localhost).
func newCertificates(ip net.IP) (tls.Certificate, []byte, *x509.CertPool, error) {
	fail := func(err error) (tls.Certificate, []byte, *x509.CertPool, error) {
		return tls.Certificate{}, nil, nil, fmt.Errorf("auth0test: certificates: %w", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fail(err)
	}
	now := time.Now()
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
		return n
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "auth0test dev tenant CA", Organization: []string{"auth0test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fail(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fail(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fail(err)
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if ip != nil && !ip.IsUnspecified() && !ip.Equal(ips[0]) && !ip.Equal(ips[1]) {
		ips = append(ips, ip)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "auth0test dev tenant"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  ips,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return fail(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey}, caPEM, pool, nil
}
