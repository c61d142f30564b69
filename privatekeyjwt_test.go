package stepup

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stepupauth/stepup/auth0test"
)

// TestPrivateKeyJWTAgainstTenant logs in with private_key_jwt client
// authentication (RFC 7523) against auth0test, which checks the assertion
// as Auth0 does (signature with the registered key, iss = sub = client_id,
// aud, exp, one use per jti), and refreshes with it.
func TestPrivateKeyJWTAgainstTenant(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		alg     string
		signer  *rsa.PrivateKey
		wantErr string // OAuth error code; "" = success
	}{
		{"RS256", "RS256", key, ""},
		{"RS384", "RS384", key, ""},
		{"PS256", "PS256", key, ""},
		{"unregistered key", "RS256", other, "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := auth0test.DefaultApplication()
			app.ClientSecret = ""
			app.TokenEndpointAuthMethod = AuthPrivateKeyJWT
			app.ClientAssertionKeys = []*rsa.PublicKey{&key.PublicKey}
			h := newHarness(t, harnessOpts{
				tenant: auth0test.Config{Applications: []auth0test.Application{app}, AccessTokenLifetime: 10 * time.Minute},
				client: func(c *Config) {
					c.ClientSecret = ""
					c.TokenEndpointAuthMethod = AuthPrivateKeyJWT
					c.ClientAssertionKey = tc.signer
					c.ClientAssertionAlgorithm = tc.alg
					c.Scopes = []string{"openid", "profile", "email", "offline_access"}
				},
			})
			creds := auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword}
			ar, cb := h.startAuthorize(nil, creds, AuthorizeOptions{Policy: MFA})
			login, err := h.c.Exchange(context.Background(), cb, ar.Transaction)
			if tc.wantErr != "" {
				var te *TenantError
				if !errors.As(err, &te) || te.Code != tc.wantErr || te.StatusCode != http.StatusUnauthorized {
					t.Fatalf("Exchange: got %v, want a 401 %s TenantError", err, tc.wantErr)
				}
				if login != nil {
					t.Fatal("a login came back with the error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if login.IDToken.Subject == "" || login.Token.RefreshToken == "" {
				t.Fatalf("login without subject or refresh token: %+v", login)
			}
			if got := h.tn.GrantCalls(auth0test.GrantAuthorizationCode); got != 1 {
				t.Errorf("code redemptions: %d, want 1", got)
			}
			// A refresh authenticates with a fresh assertion (a reused jti is refused).
			s, err := h.c.StartSession(context.Background(), login, nil)
			if err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(11 * time.Minute) // past the access token's lifetime, within the session's
			tok, err := h.c.TokenSource(context.Background(), s.Handle, TokenSourceOptions{}).Token()
			if err != nil {
				t.Fatalf("refresh with private_key_jwt: %v", err)
			}
			if tok.AccessToken == login.Token.AccessToken {
				t.Error("the token source returned the expired access token")
			}
			if got := h.tn.GrantCalls(auth0test.GrantRefreshToken); got != 1 {
				t.Errorf("refreshes: %d, want 1", got)
			}
		})
	}
}
