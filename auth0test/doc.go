// Package auth0test is an Auth0-compatible dev tenant: a real HTTPS server on
// loopback that speaks Auth0's Authentication API, for tests (ours and our users')
// and for demos. It is to an Auth0 tenant what net/http/httptest is to a web
// server: start one per test, point the code under test at its domain, drive
// logins without a browser, move its clock, break it on purpose, and count what
// reached it.
//
// It emulates a tenant that runs Auth0's documented step-up Action: hosted login
// pages (one per connection), an OTP page when MFA is required, SSO, acr_values,
// max_age and prompt, PKCE, refresh-token rotation with reuse detection, PAR, CIBA,
// the MFA API and logout — with Auth0's paths, status codes and error bodies, so
// that github.com/auth0/go-auth0/v3's own authentication client works against it
// unchanged (the package's tests prove it).
//
// # Walkthrough
//
//	tn := auth0test.NewTenant(t, auth0test.Config{RefreshTokenRotation: true})
//	app := auth0test.DefaultApplication() // stepup-demo-client, callback http://127.0.0.1:8080/callback
//
//	// Point the code under test at the tenant:
//	//   domain tn.Domain() ("127.0.0.1:PORT"), issuer tn.Issuer() ("https://127.0.0.1:PORT/"),
//	//   HTTP client tn.Client() (trusts the tenant's CA; one per consumer), or
//	//   SSL_CERT_FILE=<file with tn.CACertPEM()> for another process.
//
//	// The code under test builds an authorize URL; a Browser goes through the
//	// hosted pages and returns the callback URL (code and state, or error).
//	cb, err := tn.Login(ctx, authorizeURL, auth0test.Credentials{
//		Email: auth0test.AliceEmail, Password: auth0test.AlicePassword, // OTP computed from alice's TOTP secret
//	})
//	// cb.Query().Get("code") goes to the code under test's callback handler.
//
//	// Step-up: acr_values=auth0test.MFAACR makes the tenant show the OTP page,
//	// even when the browser has an SSO session; the ID token then has
//	// "acr": MFAACR and "amr": ["mfa"].
//	b := tn.NewBrowser() // keeps the SSO cookie between logins
//	b.Login(ctx, loginURL, creds)   // b.Pages == [login]
//	b.Login(ctx, stepUpURL, creds)  // b.Pages == [otp]
//
//	// Time: every expiry uses Config.Now; tests move a fake clock instead of sleeping.
//	// Failures: tn.InjectFault("/oauth/token", auth0test.Fault{Status: 503, Times: 1}),
//	// tn.ForgeIDTokens(func(h, c map[string]any) { c["nonce"] = "x" }), tn.RotateKeys().
//	// Counting: tn.Calls("/oauth/token"), tn.GrantCalls("refresh_token"), tn.RefreshLog().
//	// CIBA: tn.PendingCIBA(), tn.ApproveCIBA(id), tn.DenyCIBA(id), or the page
//	// tn.URL()+"/auth0test/ciba" with Approve/Deny buttons for people.
//
// A zero Config gives: the application DefaultApplication; the users of
// DefaultUsers (alice: database user with an OTP factor and a recovery code; bob:
// database user without a factor; carol: google-oauth2 user with a factor); the
// connections Username-Password-Authentication and google-oauth2; acr_values_supported
// [MFAACR]; no refresh-token rotation; Auth0's default lifetimes (ID token 36000 s,
// access token 86400 s, refresh token 30 days absolute and idle, session 7 days
// absolute and 3 days idle).
//
// # Endpoints
//
//	GET  /.well-known/openid-configuration   discovery (issuer with trailing slash)
//	GET  /.well-known/jwks.json              current key, next key, previous key until RevokePreviousKey
//	GET  /authorize                          response_type=code only; PKCE S256 or plain; PAR request_uri
//	     /u/login, /u/social, /u/mfa-otp-challenge   hosted pages (HTML forms)
//	POST /oauth/token                        authorization_code, refresh_token, client_credentials,
//	                                         urn:openid:params:grant-type:ciba, mfa-otp, mfa-oob, mfa-recovery-code
//	POST /oauth/revoke                       200 with an empty body; revokes the token's whole family
//	POST /oauth/par                          201 {"request_uri","expires_in":30}; single use
//	GET  /userinfo                           Bearer access token with the userinfo audience
//	POST /bc-authorize                       CIBA (poll mode)
//	GET  /mfa/authenticators, POST /mfa/challenge   MFA API (Bearer mfa_token)
//	GET  /v2/logout, GET|POST /oidc/logout   end the SSO session; returnTo / post_logout_redirect_uri checked
//	GET|POST /auth0test/ciba                 not Auth0's: pending CIBA requests and MFA push
//	                                         challenges with Approve/Deny buttons
//
// Errors have Auth0's JSON shape {"error","error_description"} (mfa_required adds
// mfa_token and mfa_requirements) with Auth0's statuses: invalid_request 400,
// invalid_client 401, invalid_grant and unauthorized_client and access_denied 403
// at /oauth/token, CIBA and MFA-OOB polling errors 400 (slow_down with
// Retry-After). /authorize errors are redirected to the callback with error,
// error_description and state — or, when the client or callback URL cannot be
// trusted, shown on an error page (Browser.Login returns a *PageError). Malformed
// input (bad escapes, duplicate parameters, bodies over 64 KiB, non-object JSON)
// gets 400 invalid_request; no input makes a handler panic (fuzzed).
//
// # Helpers
//
// Browser (NewBrowser, Login, Logout, HasSession, Pages) drives the hosted pages
// over HTTP with a cookie jar; Tenant.Login uses a fresh Browser. TOTP and
// Tenant.OTP compute codes. Sign, SignWith, SigningKeys, IDTokenClaims and
// AccessTokenClaims mint tokens for negative tests. NewMFAToken, PendingOOB,
// ApproveOOB and DenyOOB drive the MFA API; PendingCIBA, ApproveCIBA and DenyCIBA the CIBA flow.
// AddCallbackURL and AddLogoutURL register URLs known only after start-up.
// InjectFault, ClearFaults and ForgeIDTokens break things; Calls, GrantCalls,
// Endpoints, ResetCounters, RefreshLog and RefreshFamily count them;
// RevokeRefreshFamily and EndSessions act as an administrator would. The Tenant
// is also an http.Handler, so fuzz targets and benchmarks can call ServeHTTP
// in-process. Applications may authenticate with client_secret_post,
// client_secret_basic, private_key_jwt (Application.ClientAssertionKeys) or none.
//
// # Step-up semantics
//
// MFA is required when acr_values contains MFAACR (and the tenant lists it in
// ACRValuesSupported and IgnoreACRValues is false), when a requested scope of the
// audience is one of its API.MFAScopes (Auth0's documented API step-up), or when
// the Action calls RequireMFA. The ID token then carries "amr":["mfa"], and
// "acr":MFAACR when MFA was requested through acr_values. Access tokens never
// carry acr, amr or auth_time; the Action may add namespaced claims to either token
// (restricted claim names are ignored, as by Auth0). ID tokens from a refresh-token
// exchange, from prompt=none, from the MFA API and from CIBA carry no amr.
// IgnoreACRValues emulates a misconfigured tenant: no MFA for acr_values and no
// acr, so a client's refusal of a step-up that did not happen can be tested.
//
// # Choices where Auth0's behaviour is not documented
//
//   - acr is returned only when requested, supported and satisfied; never otherwise.
//   - An SSO session remembers that MFA was performed: a later /authorize with
//     acr_values=MFAACR in the same session needs no OTP page (amr ["mfa"] again).
//     prompt=login, or max_age exceeded, re-authenticates fully (password, then OTP).
//     The session is created only when the whole login (first factor and MFA)
//     succeeds. A connection parameter different from the session's forces a login.
//   - auth_time is in every ID token obtained through /authorize (the time of the
//     session's last first-factor authentication: completing MFA on an existing
//     SSO session does not change it, so max_age measures the age of the password
//     or social login) and refresh (the original login's).
//     Refreshed ID tokens carry neither amr nor acr: a refresh never changes a
//     session's step-up level. CIBA: auth_time is the approval time, no acr/amr.
//     MFA API: auth_time is the grant time, no acr/amr.
//   - The Action's event.authentication.methods (ActionEvent.Authentication) is
//     the SSO session's first factor with its time (the session's auth_time) and,
//     once the session performed MFA, {"mfa", when the one-time code was accepted}.
//     The Action runs after the first factor and before the MFA it requests, so
//     the login that performs MFA does not see it yet; later logins in the session
//     do, and an Action can copy that time into a namespaced access-token claim.
//     MFA API grants see [{"mfa", grant time}]; refresh exchanges and CIBA none.
//   - prompt=none: no session (or max_age exceeded) gives login_required; MFA needed
//     but not yet performed in the session gives interaction_required.
//   - A user without an enrolled factor who needs MFA gets error=access_denied
//     (enrollment is not emulated); with the MFA API, mfa_requirements says enroll.
//   - Authorization codes live 10 minutes; a replayed code is refused and revokes
//     the refresh-token family its first redemption created. An /authorize without
//     redirect_uri uses the application's first callback URL; the code exchange must
//     then repeat the authorization request's redirect_uri, or leave it out when
//     that request did. A code_verifier is refused for a code issued without
//     code_challenge. max_age=0 always re-authenticates.
//   - API access: every API scope the API defines is granted when requested (no
//     RBAC, no consent), and offline_access gives a refresh token for any API.
//   - private_key_jwt: the assertion's aud may be the issuer or the token endpoint
//     URL; exp must be at most 5 minutes away (go-auth0 uses 2); a jti is accepted
//     once. The header's kid is not required: every registered key is tried.
//   - The token endpoint enforces each application's TokenEndpointAuthMethod:
//     client_secret_basic and client_secret_post are not interchangeable (401
//     invalid_client). Clients using golang.org/x/oauth2 should set AuthStyle
//     explicitly (AuthStyleInParams for the default application), or its
//     auto-detection costs an extra failed request.
//   - Without rotation, refresh exchanges return no new refresh token. With
//     rotation, the overlap period accepts again only the token most recently
//     rotated out (each such reuse returns a new token); any older token, or the
//     previous one after the period, revokes the family. Expired families answer
//     the same invalid_grant as unknown tokens.
//   - /oauth/revoke answers 200 for unknown tokens and for tokens of another
//     application (RFC 7009), and revokes nothing then.
//   - CIBA: the first poll is never "too fast"; each slow_down adds 5 s to the
//     interval (RFC 8628); approval and denial are final; an expired or denied
//     request answers access_denied once, then invalid_grant.
//   - TOTP codes of the current 30 s step and one step either side are accepted.
//   - Access tokens are JWTs even without an audience (Auth0 issues opaque tokens
//     then); their aud is then the userinfo URL only.
//   - The SSO cookie is "auth0" (Secure, HttpOnly, SameSite=None).
//
// # What it does not emulate
//
// Implicit and hybrid flows, response_mode form_post and web_message, the password
// and password-realm grants, device code, token exchange, mTLS client
// authentication, JWE access tokens, organizations and
// invitations, consent screens, MFA enrollment, SMS/email/WebAuthn factors,
// the Management API, rate limits (inject them with faults), custom domains and
// the Universal Login look. Hosted pages are plain forms meant for Browser and for
// people in a demo; their markup (data-page and data-error attributes) is the
// only contract Browser relies on.
package auth0test
