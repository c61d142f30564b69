package auth0test_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auth0/go-auth0/v3/authentication"
	"github.com/auth0/go-auth0/v3/authentication/ciba"
	"github.com/auth0/go-auth0/v3/authentication/mfa"
	"github.com/auth0/go-auth0/v3/authentication/oauth"

	"github.com/stepupauth/stepup/auth0test"
)

// TestGoAuth0CrossCheck runs go-auth0 v3's own authentication client, as is,
// against the tenant: the tenant is only as good as this test says.
func TestGoAuth0CrossCheck(t *testing.T) {
	// go-auth0 validates ID tokens against the real clock, so this tenant's clock is
	// the real one plus an offset the test moves by a few seconds (within go-auth0's
	// 60 s leeway).
	var mu sync.Mutex
	var offset time.Duration
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(offset)
	}
	advance := func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		offset += d
	}
	assertionKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkApp := auth0test.Application{ClientID: "m2m-pkjwt", TokenEndpointAuthMethod: "private_key_jwt",
		ClientAssertionKeys: []*rsa.PublicKey{&assertionKey.PublicKey}}
	tn := auth0test.NewTenant(t, auth0test.Config{RefreshTokenRotation: true, Now: now,
		Applications: []auth0test.Application{auth0test.DefaultApplication(), pkApp},
		APIs:         []auth0test.API{{Identifier: "https://payroll.example", Scopes: []string{"read:payroll"}}}})
	app := auth0test.DefaultApplication()
	ctx := context.Background()
	api, err := authentication.New(ctx, tn.Domain(),
		authentication.WithClient(tn.Client()),
		authentication.WithClientID(app.ClientID),
		authentication.WithClientSecret(app.ClientSecret),
		authentication.WithNoRetries(),
	)
	if err != nil {
		t.Fatalf("authentication.New: %v", err)
	}
	if tn.Calls("/.well-known/jwks.json") != 1 {
		t.Errorf("go-auth0 did not fetch the JWKS at New")
	}

	verifier := "go-auth0-cross-check-verifier-0123456789-abcdefghijklmnop"
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	authURL := tn.URL() + "/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {app.ClientID}, "redirect_uri": {app.CallbackURLs[0]},
		"scope": {"openid profile email offline_access"}, "state": {"s"}, "nonce": {"n-1"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "acr_values": {auth0test.MFAACR},
		"max_age": {"60"}, // go-auth0 checks auth_time with MaxAge, and Auth0 sends it only then
	}.Encode()
	cb, err := tn.Login(ctx, authURL, auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := api.OAuth.LoginWithAuthCodeWithPKCE(ctx, oauth.LoginWithAuthCodeWithPKCERequest{
		Code: cb.Query().Get("code"), CodeVerifier: verifier, RedirectURI: app.CallbackURLs[0],
	}, oauth.IDTokenValidationOptions{Nonce: "n-1", MaxAge: 60e9})
	if err != nil {
		t.Fatalf("LoginWithAuthCodeWithPKCE: %v", err)
	}
	if tokens.IDToken == "" || tokens.RefreshToken == "" || tokens.TokenType != "Bearer" || tokens.ExpiresIn != 86400 {
		t.Fatalf("token set = %+v", tokens)
	}

	// A wrong nonce must fail go-auth0's own validation.
	cb, _ = tn.Login(ctx, authURL, auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword})
	if _, err := api.OAuth.LoginWithAuthCodeWithPKCE(ctx, oauth.LoginWithAuthCodeWithPKCERequest{
		Code: cb.Query().Get("code"), CodeVerifier: verifier, RedirectURI: app.CallbackURLs[0],
	}, oauth.IDTokenValidationOptions{Nonce: "other"}); err == nil {
		t.Error("go-auth0 accepted a wrong nonce")
	}

	user, err := api.UserInfo(ctx, tokens.AccessToken)
	if err != nil || user.Sub != "auth0|alice" || user.Email != auth0test.AliceEmail {
		t.Errorf("UserInfo = %+v, %v", user, err)
	}

	refreshed, err := api.OAuth.RefreshToken(ctx, oauth.RefreshTokenRequest{RefreshToken: tokens.RefreshToken}, oauth.IDTokenValidationOptions{})
	if err != nil {
		t.Fatalf("RefreshToken: %v", err)
	}
	if refreshed.RefreshToken == "" || refreshed.RefreshToken == tokens.RefreshToken {
		t.Errorf("rotation: got refresh token %q", refreshed.RefreshToken)
	}
	if err := api.OAuth.RevokeRefreshToken(ctx, oauth.RevokeRefreshTokenRequest{Token: refreshed.RefreshToken}); err != nil {
		t.Fatalf("RevokeRefreshToken: %v", err)
	}
	_, err = api.OAuth.RefreshToken(ctx, oauth.RefreshTokenRequest{RefreshToken: refreshed.RefreshToken}, oauth.IDTokenValidationOptions{})
	var aerr *authentication.Error
	if !errors.As(err, &aerr) || aerr.StatusCode != 403 || aerr.Err != "invalid_grant" || aerr.Message != "Unknown or invalid refresh token." {
		t.Errorf("refresh after revoke: %#v", err)
	}

	par, err := api.OAuth.PushedAuthorization(ctx, oauth.PushedAuthorizationRequest{
		ResponseType: "code", RedirectURI: app.CallbackURLs[0], Scope: "openid", Nonce: "par-nonce",
		CodeChallenge: challenge, ExtraParameters: map[string]string{"code_challenge_method": "S256", "state": "par"},
	})
	if err != nil {
		t.Fatalf("PushedAuthorization: %v", err)
	}
	if par.ExpiresIn != 30 {
		t.Errorf("PAR expires_in = %d", par.ExpiresIn)
	}
	cb, err = tn.Login(ctx, tn.URL()+"/authorize?"+url.Values{"client_id": {app.ClientID}, "request_uri": {par.RequestURI}}.Encode(),
		auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword})
	if err != nil || cb.Query().Get("state") != "par" {
		t.Fatalf("login through PAR: %v %v", cb, err)
	}
	if _, err := api.OAuth.LoginWithAuthCodeWithPKCE(ctx, oauth.LoginWithAuthCodeWithPKCERequest{
		Code: cb.Query().Get("code"), CodeVerifier: verifier, RedirectURI: app.CallbackURLs[0],
	}, oauth.IDTokenValidationOptions{Nonce: "par-nonce"}); err != nil {
		t.Errorf("code from PAR: %v", err)
	}

	// CIBA: errors come back as Auth0's, then a full approve round.
	_, err = api.CIBA.Initiate(ctx, ciba.Request{Scope: "profile", BindingMessage: "TEST-BINDING-MESSAGE",
		LoginHint: map[string]string{"format": "iss_sub", "iss": tn.Issuer(), "sub": "auth0|alice"}})
	if !errors.As(err, &aerr) || aerr.StatusCode != 400 || aerr.Err != "invalid_request" || aerr.Message != "openid scope must be requested" {
		t.Errorf("CIBA without openid: %#v", err)
	}
	_, err = api.CIBA.Initiate(ctx, ciba.Request{Scope: "openid", BindingMessage: "TEST-BINDING-MESSAGE",
		LoginHint: map[string]string{"format": "iss_sub", "iss": tn.Issuer(), "sub": "auth0|Random-ID"}})
	if !errors.As(err, &aerr) || aerr.Err != "unknown_user_id" {
		t.Errorf("CIBA unknown user: %#v", err)
	}
	req, err := api.CIBA.Initiate(ctx, ciba.Request{Scope: "openid", BindingMessage: "TEST-BINDING-MESSAGE",
		LoginHint: map[string]string{"format": "iss_sub", "iss": tn.Issuer(), "sub": "auth0|alice"}})
	if err != nil {
		t.Fatalf("CIBA Initiate: %v", err)
	}
	if req.ExpiresIn != 300 || req.Interval != 5 {
		t.Errorf("CIBA response = %+v", req)
	}
	poll := func() (*oauth.TokenSet, error) {
		return api.OAuth.LoginWithGrant(ctx, auth0test.GrantCIBA, url.Values{
			"auth_req_id": {req.AuthReqID}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret},
		}, oauth.IDTokenValidationOptions{})
	}
	if _, err := poll(); !errors.As(err, &aerr) || aerr.Err != "authorization_pending" {
		t.Errorf("CIBA pending: %#v", err)
	}
	if err := tn.ApproveCIBA(req.AuthReqID); err != nil {
		t.Fatal(err)
	}
	// Polling again at once is too fast: go-auth0 surfaces slow_down.
	if _, err := poll(); !errors.As(err, &aerr) || aerr.Err != "slow_down" {
		t.Errorf("CIBA fast poll: %#v", err)
	}
	advance(11 * time.Second) // the interval grew to 10 s
	cibaTokens, err := poll()
	if err != nil || cibaTokens.IDToken == "" || cibaTokens.AccessToken == "" {
		t.Fatalf("CIBA approved poll: %+v, %v", cibaTokens, err)
	}
	if _, err := poll(); !errors.As(err, &aerr) || aerr.Err != "invalid_grant" {
		t.Errorf("CIBA auth_req_id reused: %#v", err)
	}

	// MFA API through go-auth0.
	mfaToken, err := tn.NewMFAToken(app.ClientID, auth0test.AliceEmail, "openid", "")
	if err != nil {
		t.Fatal(err)
	}
	auths, err := api.MFA.ListAuthenticators(ctx, mfaToken)
	if err != nil || len(auths) == 0 || auths[0].AuthenticatorType != "otp" {
		t.Errorf("ListAuthenticators = %+v, %v", auths, err)
	}
	ch, err := api.MFA.Challenge(ctx, mfa.ChallengeRequest{MFAToken: mfaToken, ChallengeType: "otp"})
	if err != nil || ch.ChallengeType != "otp" {
		t.Errorf("Challenge = %+v, %v", ch, err)
	}
	if _, err := api.MFA.VerifyWithOTP(ctx, mfa.VerifyWithOTPRequest{MFAToken: mfaToken, OTP: "000000"}); !errors.As(err, &aerr) || aerr.StatusCode != 403 {
		t.Errorf("VerifyWithOTP wrong code: %#v", err)
	}
	ts, err := api.MFA.VerifyWithOTP(ctx, mfa.VerifyWithOTPRequest{MFAToken: mfaToken, OTP: tn.OTP(auth0test.AliceEmail)})
	if err != nil || ts.AccessToken == "" {
		t.Errorf("VerifyWithOTP: %+v, %v", ts, err)
	}

	// MFA API enrollment through go-auth0 (AddAuthenticator, ListAuthenticators,
	// DeleteAuthenticator): bob has no factor.
	bobTok, err := tn.NewMFAToken(app.ClientID, auth0test.BobEmail, "openid", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.MFA.Challenge(ctx, mfa.ChallengeRequest{MFAToken: bobTok, ChallengeType: "otp"}); !errors.As(err, &aerr) || aerr.StatusCode != 400 {
		t.Errorf("Challenge for an unenrolled user: %#v, want 400", err)
	}
	added, err := api.MFA.AddAuthenticator(ctx, bobTok, mfa.AddAuthenticatorRequest{AuthenticatorTypes: []string{"otp"}})
	if err != nil || added.AuthenticatorType != "otp" || added.Secret == "" || len(added.RecoveryCodes) != 1 ||
		!strings.HasPrefix(added.BarcodeURI, "otpauth://totp/") || !strings.Contains(added.BarcodeURI, "secret="+added.Secret) {
		t.Fatalf("AddAuthenticator = %+v, %v", added, err)
	}
	if _, err := api.MFA.VerifyWithOTP(ctx, mfa.VerifyWithOTPRequest{MFAToken: bobTok, OTP: auth0test.TOTP(added.Secret, now())}); err != nil {
		t.Fatalf("confirming the enrollment with the mfa-otp grant: %v", err)
	}
	if bob, _ := tn.User(auth0test.BobEmail); bob.TOTPSecret != added.Secret || bob.RecoveryCode != added.RecoveryCodes[0] {
		t.Errorf("after enrollment: bob's secret %q, recovery code %q", bob.TOTPSecret, bob.RecoveryCode)
	}
	// A token for the MFA API's audience lists and removes authenticators.
	mgmt, err := tn.NewMFAToken(app.ClientID, auth0test.BobEmail, "enroll read:authenticators remove:authenticators", tn.Issuer()+"mfa/")
	if err != nil {
		t.Fatal(err)
	}
	mts, err := api.MFA.VerifyWithOTP(ctx, mfa.VerifyWithOTPRequest{MFAToken: mgmt, OTP: auth0test.TOTP(added.Secret, now())})
	if err != nil {
		t.Fatal(err)
	}
	list, err := api.MFA.ListAuthenticators(ctx, mts.AccessToken)
	if err != nil || len(list) != 3 || list[0].AuthenticatorType != "otp" || !list[0].Active {
		t.Fatalf("ListAuthenticators after enrollment = %+v, %v", list, err)
	}
	if err := api.MFA.DeleteAuthenticator(ctx, mts.AccessToken, list[0].ID); err != nil {
		t.Errorf("DeleteAuthenticator: %v", err)
	}
	if err := api.MFA.DeleteAuthenticator(ctx, mts.AccessToken, list[0].ID); !errors.As(err, &aerr) || aerr.StatusCode != 404 {
		t.Errorf("DeleteAuthenticator twice: %#v, want 404", err)
	}
	if list, err := api.MFA.ListAuthenticators(ctx, mts.AccessToken); err != nil || len(list) != 1 || list[0].AuthenticatorType != "recovery-code" {
		t.Errorf("ListAuthenticators after delete = %+v, %v (OTP and push are one enrollment)", list, err)
	}

	// private_key_jwt, with go-auth0's own client assertions.
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(assertionKey)})
	m2m, err := authentication.New(ctx, tn.Domain(), authentication.WithClient(tn.Client()),
		authentication.WithClientID(pkApp.ClientID), authentication.WithClientAssertion(string(pemKey), "RS256"),
		authentication.WithNoRetries())
	if err != nil {
		t.Fatal(err)
	}
	cc, err := m2m.OAuth.LoginWithClientCredentials(ctx, oauth.LoginWithClientCredentialsRequest{Audience: "https://payroll.example"},
		oauth.IDTokenValidationOptions{})
	if err != nil || cc.AccessToken == "" || cc.Scope != "read:payroll" {
		t.Errorf("LoginWithClientCredentials with private_key_jwt: %+v, %v", cc, err)
	}

	// Injected faults reach go-auth0 as Auth0 errors.
	tn.InjectFault("/oauth/token", auth0test.Fault{Status: 429, Times: 1})
	_, err = api.OAuth.RefreshToken(ctx, oauth.RefreshTokenRequest{RefreshToken: "x"}, oauth.IDTokenValidationOptions{})
	if !errors.As(err, &aerr) || aerr.StatusCode != 429 || aerr.Err != "too_many_requests" {
		t.Errorf("injected 429: %#v", err)
	}
}
