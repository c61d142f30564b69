package auth0test

import (
	"crypto/rand"
	"crypto/rsa"
	"net/url"
	"testing"
	"time"
)

func TestPrivateKeyJWT(t *testing.T) {
	clk := newClock()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := NewTenant(t, Config{}).SigningKeys() // some other RSA key
	app := Application{ClientID: "pkjwt", CallbackURLs: []string{"http://127.0.0.1:8080/callback"},
		TokenEndpointAuthMethod: "private_key_jwt", ClientAssertionKeys: []*rsa.PublicKey{&key.PublicKey}}
	tn := NewTenant(t, Config{Now: clk.Now, Applications: []Application{app},
		APIs: []API{{Identifier: "https://api", Scopes: []string{"read"}}}})
	assertion := func(alg string, signer *rsa.PrivateKey, mutate func(map[string]any)) string {
		c := map[string]any{"iss": "pkjwt", "sub": "pkjwt", "aud": tn.Issuer(), "jti": randomToken(8),
			"iat": clk.Now().Unix(), "exp": clk.Now().Add(time.Minute).Unix()}
		if mutate != nil {
			mutate(c)
		}
		return tn.SignWith(signer, map[string]any{"alg": alg, "typ": "JWT"}, c)
	}
	form := func(a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "audience": {"https://api"}, "client_id": {"pkjwt"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	}
	for _, alg := range []string{"RS256", "RS384", "PS256"} {
		if st, m := post(t, tn, "/oauth/token", form(assertion(alg, key, nil))); st != 200 {
			t.Errorf("%s: %d %v", alg, st, m)
		}
	}
	replayed := assertion("RS256", key, nil)
	post(t, tn, "/oauth/token", form(replayed))
	tests := []struct {
		name string
		f    url.Values
	}{
		{"replayed jti", form(replayed)},
		{"wrong key", form(assertion("RS256", other.PrivateKey, nil))},
		{"HS256", form(assertion("HS256", key, nil))},
		{"wrong aud", form(assertion("RS256", key, func(c map[string]any) { c["aud"] = "https://elsewhere/" }))},
		{"wrong iss", form(assertion("RS256", key, func(c map[string]any) { c["iss"] = "x" }))},
		{"expired", form(assertion("RS256", key, func(c map[string]any) { c["exp"] = clk.Now().Add(-time.Second).Unix() }))},
		{"too long", form(assertion("RS256", key, func(c map[string]any) { c["exp"] = clk.Now().Add(time.Hour).Unix() }))},
		{"no jti", form(assertion("RS256", key, func(c map[string]any) { delete(c, "jti") }))},
		{"wrong type", func() url.Values {
			f := form(assertion("RS256", key, nil))
			f.Set("client_assertion_type", "x")
			return f
		}()},
		{"secret instead", url.Values{"grant_type": {"client_credentials"}, "audience": {"https://api"}, "client_id": {"pkjwt"}, "client_secret": {"x"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if st, m := post(t, tn, "/oauth/token", tc.f); st != 401 || m["error"] != "invalid_client" {
				t.Errorf("got %d %v, want 401 invalid_client", st, m)
			}
		})
	}
	// The code flow with an assertion.
	code := login(t, tn.NewBrowser(), authorizeURL(tn, map[string]string{"client_id": "pkjwt"}), alice)
	f := codeForm(code)
	f.Del("client_secret")
	f.Set("client_id", "pkjwt")
	f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	f.Set("client_assertion", assertion("PS256", key, nil))
	if st, m := post(t, tn, "/oauth/token", f); st != 200 || m["id_token"] == nil {
		t.Errorf("code exchange with private_key_jwt: %d %v", st, m)
	}
}
