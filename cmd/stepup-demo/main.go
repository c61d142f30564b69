// Command stepup-demo is the Fabrikam intranet: a small web app that shows
// stepup at work. Customer data needs a login; salary data needs a
// multi-factor authentication no older than STEPUP_MAX_AGE; the salary API
// (/api/employees) needs an access token issued after that MFA.
//
// With no environment it runs an embedded auth0test dev tenant on loopback
// TLS and the in-memory store:
//
//	go run ./cmd/stepup-demo
//
// and prints the URL, the demo user, where to read the one-time code, and
// the one command that makes this system's browsers trust the demo CA: a CA
// created on the first run under os.UserConfigDir()/stepup-demo (or
// STEPUP_DEMO_CA_DIR), reused by later runs, that can vouch for loopback
// names only (ca.go). The tenant thus stays on https, as Auth0 is, and a
// browser opens it without a certificate warning once the CA is trusted.
// Against a real tenant and a shared Redis:
//
//	AUTH0_DOMAIN=fabrikam.eu.auth0.com AUTH0_CLIENT_ID=... AUTH0_CLIENT_SECRET=... \
//	AUTH0_AUDIENCE=https://fabrikam.example/api REDIS_URL=redis://127.0.0.1:6379/0 \
//	go run ./cmd/stepup-demo
//
// Environment (see settings.go): STEPUP_ADDR, STEPUP_BASE_URL, AUTH0_DOMAIN,
// AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET, AUTH0_AUDIENCE, REDIS_URL,
// STEPUP_MAX_AGE, STEPUP_API_CLAIM_NAMESPACE, STEPUP_SEALING_KEY,
// STEPUP_REDIS_PREFIX, SSL_CERT_FILE, STEPUP_DEMO_CA_DIR. REDIS_URL names one server
// (redis://host:6379/0), a Redis Cluster (redis://seed1:p1?addr=seed2:p2...)
// or a Sentinel set-up (redis://sentinel1:p1?master_name=NAME&addr=...), as
// redisstore.OpenURL reads it. A configuration it cannot run with exits with
// status 2 and a message that says what to fix.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/redisstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Getenv, os.Stdout, os.Stderr, hooks{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(exitCode(err))
}

// exitCode is 0 on a clean shutdown, 2 for a configuration error, 1 otherwise.
func exitCode(err error) int {
	var ce *configError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ce):
		return 2
	}
	return 1
}

// apiTokenCacheSize is how many verified access tokens the salary API keeps:
// a page load presents the same token again until it expires.
const apiTokenCacheSize = 1024

// shutdownTimeout bounds the wait for in-flight requests on shutdown.
const shutdownTimeout = 10 * time.Second

// hooks let tests look inside a demo run in-process. The zero value is the
// real program.
type hooks struct {
	// ready, when not nil, is called once the demo serves.
	ready func(*demo)
	// now, when not nil, is the clock of the demo and of its embedded
	// tenant, so that a test moves time instead of sleeping.
	now func() time.Time
}

// run runs the demo until ctx ends, then shuts it down gracefully. getenv
// reads its configuration; stdout gets the start-up banner, stderr the logs.
func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, h hooks) error {
	s, err := loadSettings(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return badConfig("STEPUP_ADDR=%q: cannot listen: %v", s.Addr, err)
	}
	defer ln.Close()
	if getenv("STEPUP_BASE_URL") == "" {
		s.BaseURL = defaultBaseURL(ln.Addr())
	}

	if h.now == nil {
		h.now = time.Now
	}
	d, err := newDemo(ctx, s, ln.Addr(), log, h.now)
	if err != nil {
		return err
	}
	defer d.close()

	srv := &http.Server{
		Handler:           d.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	d.banner(stdout)
	log.Info("stepup-demo: serving", "url", s.BaseURL, "tenant", d.issuer, "store", d.storeName,
		"api_audience", d.cfg.Audience, "max_age", s.MaxAge.String())
	if h.ready != nil {
		h.ready(d)
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("stepup-demo: serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("stepup-demo: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("stepup-demo: shutdown: %w", err)
	}
	log.Info("stepup-demo: stopped")
	return nil
}

// defaultBaseURL is http:// and the address really bound (STEPUP_ADDR may
// say port 0), with 127.0.0.1 for an address that listens on every
// interface (":8080"), which a browser cannot be sent to.
func defaultBaseURL(addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	host := ta.IP.String()
	if ta.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(ta.Port))
}

// demo is the running application: its configuration, the stepup Client,
// the API's Verifier, the store and, without AUTH0_DOMAIN, the embedded
// tenant.
type demo struct {
	cfg       settings
	log       *slog.Logger
	now       func() time.Time
	client    *stepup.Client
	verifier  *stepup.Verifier  // nil without an API audience
	api       *stepup.APIClient // calls apiURL with the sessions' tokens; nil without an API audience
	apiPolicy stepup.Policy
	pagePol   stepup.Policy
	security  *security         // /account/security (security.go)
	tenant    *auth0test.Tenant // embedded tenant, or nil
	ca        *demoCA           // the embedded tenant's CA, or nil
	issuer    string
	storeName string
	rdb       redis.UniversalClient
	apiURL    string // this process's own /api/employees, called by the salary page
	closers   []func() error

	// backChannel is the embedded tenant's https way to POST
	// /backchannel-logout (logout.go), or nil.
	backChannel *backChannelListener
}

func newDemo(ctx context.Context, s settings, addr net.Addr, log *slog.Logger, now func() time.Time) (d *demo, err error) {
	d = &demo{cfg: s, log: log, now: now}
	defer func() {
		if err != nil {
			d.close()
		}
	}()

	// Redis first: a bad REDIS_URL is a configuration error, found before
	// the embedded tenant starts. OpenURL does not connect.
	if s.RedisURL != "" {
		if d.rdb, err = redisstore.OpenURL(s.redisURL); err != nil {
			return d, badConfig("REDIS_URL is not a Redis URL such as redis://127.0.0.1:6379/0 (Cluster: redis://h1:p1?addr=h2:p2; Sentinel: redis://s1:p1?master_name=NAME&addr=s2:p2): %v", err)
		}
		d.closers = append(d.closers, d.rdb.Close)
	}

	// The tenant, and an HTTP client that trusts its certificate.
	var (
		domain, clientID, secret string
		roots                    *x509.CertPool
	)
	if s.Domain == "" {
		if d.cfg.Audience == "" {
			d.cfg.Audience = defaultAudience
		}
		dir := s.CADir
		if dir == "" {
			if dir, err = defaultCADir(); err != nil {
				return d, err
			}
		}
		if d.ca, err = loadOrCreateCA(dir, time.Now()); err != nil {
			return d, err
		}
		bcl, err := listenBackChannel()
		if err != nil {
			return d, err
		}
		d.backChannel = bcl
		d.closers = append(d.closers, bcl.close)
		tn, sec, err := startEmbeddedTenant(s.BaseURL, d.cfg.Audience, s.Namespace, d.ca.ca, bcl, log, now)
		if err != nil {
			return d, fmt.Errorf("stepup-demo: starting the embedded tenant: %w", err)
		}
		d.tenant = tn
		d.closers = append(d.closers, func() error { tn.Close(); return nil })
		domain, clientID, secret, roots = tn.Domain(), demoClientID, sec, tn.CertPool()
	} else {
		domain, clientID, secret = s.Domain, s.ClientID, s.ClientSecret
		if roots, err = x509.SystemCertPool(); err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		if s.CAFile != "" {
			// Also read here, not only by crypto/x509 at the first use of the
			// system pool: that reads the process environment once.
			pem, err := os.ReadFile(s.CAFile)
			if err != nil {
				return d, badConfig("SSL_CERT_FILE: %v", err)
			}
			if !roots.AppendCertsFromPEM(pem) {
				return d, badConfig("SSL_CERT_FILE=%q: no certificate could be parsed", s.CAFile)
			}
		}
	}
	tenantHTTP := &http.Client{
		Timeout: stepup.DefaultHTTPTimeout,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     time.Minute,
		},
	}

	// The store.
	cfg := stepup.Config{
		Domain:       domain,
		ClientID:     clientID,
		ClientSecret: secret,
		RedirectURL:  s.BaseURL + "/callback",
		Audience:     d.cfg.Audience,
		HTTPClient:   tenantHTTP,
		Logger:       log,
		Now:          now,
		ErrorHandler: d.errorPage,
	}
	d.storeName = "memory"
	if d.rdb != nil {
		st, err := redisstore.New(d.rdb, redisstore.Options{Prefix: s.RedisPrefix})
		if err != nil {
			return d, badConfig("REDIS_URL: %v", err)
		}
		key, err := s.sealingKey(secret)
		if err != nil {
			return d, fmt.Errorf("stepup-demo: sealing key: %w", err)
		}
		cfg.Store, cfg.SealingKeys = st, [][]byte{key}
		d.storeName = "redis " + s.redisName
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := d.rdb.Ping(pctx).Err(); err != nil {
			// Not fatal: Redis may come up later; until then requests fail closed (503).
			log.Warn("stepup-demo: Redis does not answer yet; sign-ins fail until it does", "redis", s.redisName, "error", err)
		}
		cancel()
	} else if s.SealingKey != nil {
		cfg.SealingKeys = [][]byte{s.SealingKey}
	}

	d.client, err = stepup.New(ctx, cfg)
	if err != nil {
		if errors.Is(err, stepup.ErrInvalidConfig) {
			return d, badConfig("%v", err)
		}
		return d, err
	}
	d.closers = append(d.closers, d.client.Close)
	d.issuer = d.client.Issuer()
	if d.backChannel != nil {
		d.backChannel.serve(d.backChannelRoutes(), log)
	}

	d.pagePol = stepup.MFA.WithMaxAge(s.MaxAge).Named("salaries")
	d.apiPolicy = stepup.MFA.WithMaxAge(s.MaxAge).Named("salaries-api")
	if d.security, err = newSecurity(d); err != nil {
		return d, err
	}
	// The salary page calls this process's API over loopback, as a backend
	// calls a separate API.
	d.apiURL = defaultBaseURL(addr) + "/api/employees"
	if d.cfg.Audience != "" {
		// The API's Verifier shares the Client's cache of the tenant's keys.
		d.verifier, err = d.client.Verifier(d.cfg.Audience,
			stepup.WithClaimNamespace(s.Namespace),
			stepup.WithCacheSize(apiTokenCacheSize),
			stepup.WithVerifierErrorHandler(func(_ http.ResponseWriter, r *http.Request, err error) {
				log.InfoContext(r.Context(), "stepup-demo: API request refused", "path", r.URL.Path, "error", err)
			}))
		if err != nil {
			if errors.Is(err, stepup.ErrInvalidConfig) {
				return d, badConfig("%v", err)
			}
			return d, err
		}
		d.closers = append(d.closers, d.verifier.Close)
		d.api, err = d.client.APIClient(stepup.APIConfig{
			Audience:   d.cfg.Audience,
			HTTPClient: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}},
		})
		if err != nil {
			return d, badConfig("%v", err)
		}
	}
	return d, nil
}

func (d *demo) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		if err := d.closers[i](); err != nil {
			d.log.Warn("stepup-demo: closing", "error", err)
		}
	}
	d.closers = nil
}

// banner tells the person who started the demo what to do next.
func (d *demo) banner(w io.Writer) {
	fmt.Fprintf(w, "Fabrikam intranet (stepup demo): %s\n", d.cfg.BaseURL)
	if d.tenant != nil {
		fmt.Fprintf(w, "  tenant:   embedded dev tenant (auth0test) at %s\n", d.tenant.URL())
		if d.ca.created {
			fmt.Fprintf(w, "  demo CA:  %s (new: trust it once, and the tenant's pages open without a certificate warning)\n", d.ca.certPath)
		} else {
			fmt.Fprintf(w, "  demo CA:  %s (the one of earlier runs: once trusted, nothing more to do)\n", d.ca.certPath)
		}
		fmt.Fprintf(w, "  trust:    %s\n", trustCommand(runtime.GOOS, d.ca.certPath))
		fmt.Fprintf(w, "            (it vouches for loopback names only; other systems and Firefox: README, \"Trust the demo CA once\")\n")
		fmt.Fprintf(w, "  sign in:  %s / %s\n", auth0test.AliceEmail, auth0test.AlicePassword)
		fmt.Fprintf(w, "  one-time code (demo aid, plays the phone): %s/demo/otp\n", d.cfg.BaseURL)
		fmt.Fprintf(w, "  a user without MFA: %s / %s\n", auth0test.BobEmail, auth0test.BobPassword)
		fmt.Fprintf(w, "  back-channel logout: the tenant POSTs to %s\n", d.backChannel.url)
	} else {
		fmt.Fprintf(w, "  tenant:   %s\n", d.issuer)
	}
	fmt.Fprintf(w, "  store:    %s\n", d.storeName)
	fmt.Fprintf(w, "  pages:    %s/customers (login), %s/employees (MFA within %s)\n", d.cfg.BaseURL, d.cfg.BaseURL, d.cfg.MaxAge)
	if d.verifier != nil {
		fmt.Fprintf(w, "  API:      %s/api/employees (access token for %s with MFA)\n", d.cfg.BaseURL, d.cfg.Audience)
	}
	fmt.Fprintln(w, "Press Ctrl+C to stop.")
}
