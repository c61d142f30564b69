package stepup

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"weak"

	"github.com/auth0/go-auth0/v3/authentication"
)

// The MFA API and CIBA go through go-auth0's authentication client, which is
// made on first use: its constructor fetches the tenant's JWKS, and a Client
// must start while the tenant is unreachable. A failed construction is
// retried at the next use.
//
// The go-auth0 clients hang off their Client through weak pointers, so that
// this file needs no field in Client and a collected Client takes its
// go-auth0 client with it.
var goAuth0Clients sync.Map // weak.Pointer[Client] -> *goAuth0Holder

type goAuth0Holder struct {
	mu sync.Mutex // guards a
	a  *authentication.Authentication
}

// goAuth0 returns the Client's go-auth0 authentication client, making it
// the first time.
func (c *Client) goAuth0(ctx context.Context) (*authentication.Authentication, error) {
	key := weak.Make(c)
	v, loaded := goAuth0Clients.LoadOrStore(key, &goAuth0Holder{})
	if !loaded {
		runtime.AddCleanup(c, func(k weak.Pointer[Client]) { goAuth0Clients.Delete(k) }, key)
	}
	h := v.(*goAuth0Holder)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.a != nil {
		return h.a, nil
	}
	// authentication.WithClient wraps the *http.Client it is given in
	// place: give it a copy of ours, so that ours stays as the user made it.
	hc := *c.httpClient
	opts := []authentication.Option{
		authentication.WithClient(&hc),
		authentication.WithClientID(c.cfg.ClientID),
		authentication.WithNoAuth0ClientInfo(),
	}
	switch c.authMethod {
	case AuthPrivateKeyJWT:
		der, err := x509.MarshalPKCS8PrivateKey(c.cfg.ClientAssertionKey)
		if err != nil {
			return nil, fmt.Errorf("stepup: encoding the client assertion key for go-auth0: %w", err)
		}
		pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		opts = append(opts, authentication.WithClientAssertion(pemKey, c.cfg.ClientAssertionAlgorithm))
	default:
		opts = append(opts, authentication.WithClientSecret(c.cfg.ClientSecret))
	}
	// go-auth0 starts a JWKS cache whose goroutine lives as long as the
	// context given to New. We never use its ID-token validator (every
	// token goes through ours), so the goroutine is ended at once.
	nctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a, err := authentication.New(nctx, c.cfg.Domain, opts...)
	if err != nil {
		return nil, &TenantError{Endpoint: "/.well-known/jwks.json", Err: fmt.Errorf("starting go-auth0: %w", err)}
	}
	h.a = a
	return a, nil
}

// goAuth0Form adds the Client's authentication (authenticateForm) to a form
// sent with go-auth0's Request (for the calls go-auth0 v3.0.0 has no
// complete method for: its CIBA.Initiate drops audience and
// requested_expiry and knows only client secrets, and it has no CIBA poll
// that leaves ID-token validation to us).
func (c *Client) goAuth0Form(form url.Values) ([]authentication.RequestOption, error) {
	basic, err := c.authenticateForm(form)
	if err != nil || basic == "" {
		return nil, err
	}
	return []authentication.RequestOption{authentication.Header("Authorization", basic)}, nil
}

// goAuth0Error turns an error of go-auth0 into a *TenantError.
func goAuth0Error(endpoint string, err error) error {
	if err == nil {
		return nil
	}
	var ae *authentication.Error
	if errors.As(err, &ae) {
		te := &TenantError{Endpoint: endpoint, StatusCode: ae.StatusCode, Code: ae.Err, Description: ae.Message, MFAToken: ae.MFAToken}
		if te.Code == "" {
			te.Code = http.StatusText(ae.StatusCode)
		}
		return te
	}
	return &TenantError{Endpoint: endpoint, Err: err}
}
