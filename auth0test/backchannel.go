package auth0test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// BackChannelLogoutEvent is the event of every logout token.
const BackChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutTokenLifetime is the exp of a logout token after its iat (auth0test's
// choice; the spec makes exp optional and Auth0 documents none).
const logoutTokenLifetime = 2 * time.Minute

// deliveryTimeout bounds one back-channel POST.
const deliveryTimeout = 5 * time.Second

// maxDeliveries bounds the delivery log (oldest dropped first).
const maxDeliveries = 1024

// LogoutDelivery is one back-channel logout POST the tenant made (or tried).
type LogoutDelivery struct {
	ClientID  string
	URL       string
	Initiator string // the Initiator* that ended the session
	SID, Sub  string
	// LogoutToken is the JWT sent in the form field logout_token.
	LogoutToken string
	// Status is the application's HTTP status (0 when no answer: see Err).
	Status int
	Err    string
	At     time.Time
}

// DeliveryFault breaks back-channel logout deliveries to one application.
type DeliveryFault struct {
	// Drop sends nothing (the delivery is recorded with Err set).
	Drop bool
	// Forge changes the logout token's header and claims before signing, so an
	// app's refusal of a bad token can be tested.
	Forge func(header, claims map[string]any)
	// Times is how many deliveries the fault applies to; 0 means until cleared
	// with InjectDeliveryFault(clientID, DeliveryFault{}).
	Times int
}

// InjectDeliveryFault makes deliveries to clientID's back-channel URL fail as f
// says. A zero f clears it.
func (t *Tenant) InjectDeliveryFault(clientID string, f DeliveryFault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !f.Drop && f.Forge == nil {
		delete(t.deliveryFaults, clientID)
		return
	}
	t.deliveryFaults[clientID] = &f
}

// LogoutDeliveries returns the back-channel deliveries made so far, oldest first.
func (t *Tenant) LogoutDeliveries() []LogoutDelivery {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.deliveries)
}

// backChannelEnabled reports whether any application has a back-channel URL.
func (t *Tenant) backChannelEnabled() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.apps {
		if len(a.BackChannelLogoutURLs) > 0 {
			return true
		}
	}
	return false
}

func initiatorSelected(in LogoutInitiators, initiator string) bool {
	return in.Mode == "all" || slices.Contains(in.Selected, initiator)
}

// deliverLogouts POSTs a logout token to every application that logged in with
// one of the ended sessions and listens to initiator. Deliveries are made
// synchronously (the caller returns once every application answered or timed
// out), so a test sees them as soon as the logout returns.
func (t *Tenant) deliverLogouts(r *http.Request, ended []session, initiator string) {
	if len(ended) == 0 {
		return
	}
	ctx := context.Background()
	if r != nil {
		ctx = context.WithoutCancel(r.Context())
	}
	for _, s := range ended {
		for _, clientID := range s.clients {
			app, ok := t.Application(clientID)
			if !ok || len(app.BackChannelLogoutURLs) == 0 || !initiatorSelected(app.BackChannelLogoutInitiators, initiator) {
				continue
			}
			t.deliver(ctx, app, s, initiator)
		}
	}
}

func (t *Tenant) deliver(ctx context.Context, app Application, s session, initiator string) {
	now := t.cfg.Now()
	t.mu.Lock()
	key := t.current
	f := t.deliveryFaults[app.ClientID]
	var fault DeliveryFault
	if f != nil {
		fault = *f
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				delete(t.deliveryFaults, app.ClientID)
			}
		}
	}
	t.mu.Unlock()
	header := map[string]any{"alg": "RS256", "typ": "logout+jwt", "kid": key.kid}
	claims := map[string]any{
		"iss":    t.Issuer(),
		"aud":    app.ClientID,
		"iat":    now.Unix(),
		"exp":    now.Add(logoutTokenLifetime).Unix(),
		"jti":    randomToken(16),
		"events": map[string]any{BackChannelLogoutEvent: map[string]any{}},
		"sid":    s.sid,
		"sub":    s.userID,
	}
	if fault.Forge != nil {
		fault.Forge(header, claims)
	}
	tok := signJWT(key.priv, dropNil(header), claims)
	d := LogoutDelivery{ClientID: app.ClientID, URL: app.BackChannelLogoutURLs[0], Initiator: initiator,
		SID: s.sid, Sub: s.userID, LogoutToken: tok, At: now}
	if fault.Drop {
		d.Err = "dropped by an injected fault"
	} else {
		d.Status, d.Err = t.post(ctx, d.URL, tok)
	}
	t.cfg.Logger.Debug("auth0test: back-channel logout", "client_id", app.ClientID, "initiator", initiator,
		"status", d.Status, "err", d.Err)
	t.mu.Lock()
	if len(t.deliveries) >= maxDeliveries {
		t.deliveries = slices.Delete(t.deliveries, 0, len(t.deliveries)-maxDeliveries+1)
	}
	t.deliveries = append(t.deliveries, d)
	t.mu.Unlock()
}

func (t *Tenant) post(ctx context.Context, target, tok string) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target,
		strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := t.deliveryClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, ""
}

// newDeliveryClient is the default back-channel client: system roots plus cas.
// It follows no redirects (the spec's RP answers 200 or 400).
func newDeliveryClient(cas *x509.CertPool) *http.Client {
	var roots *x509.CertPool
	if sys, err := x509.SystemCertPool(); err == nil {
		roots = sys
	} else {
		roots = x509.NewCertPool()
	}
	if cas != nil {
		// CertPool offers no union: with extra CAs given, the client trusts them
		// alone (an app's test server), which is what a test wants.
		roots = cas
	}
	return &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       deliveryTimeout,
	}
}

// checkBackChannelURLs enforces Auth0's rules: at most one URL, https.
func checkBackChannelURLs(a Application) error {
	if len(a.BackChannelLogoutURLs) > 1 {
		return fmt.Errorf("auth0test: application %q: at most one back-channel logout URL", a.ClientID)
	}
	for _, u := range a.BackChannelLogoutURLs {
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "https" || p.Host == "" {
			return fmt.Errorf("auth0test: application %q: back-channel logout URL %q must be an absolute https URL", a.ClientID, u)
		}
	}
	switch a.BackChannelLogoutInitiators.Mode {
	case "custom", "all":
	default:
		return fmt.Errorf("auth0test: application %q: initiators mode %q (want custom or all)", a.ClientID, a.BackChannelLogoutInitiators.Mode)
	}
	for _, in := range a.BackChannelLogoutInitiators.Selected {
		if !slices.Contains(allInitiators, in) {
			return fmt.Errorf("auth0test: application %q: unknown back-channel logout initiator %q", a.ClientID, in)
		}
	}
	return nil
}

// ErrNoUser: the tenant has no user with that email.
var ErrNoUser = errors.New("auth0test: no such user")
