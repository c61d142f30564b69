// Package auth0test is an Auth0-compatible dev tenant: a real HTTPS server on
// loopback that speaks Auth0's Authentication API, for tests (ours and our users')
// and for demos. It is to an Auth0 tenant what net/http/httptest is to a web
// server: start one per test, point the code under test at its domain, drive
// logins without a browser, move its clock, break it on purpose, and count what
// reached it.
//
// It emulates a tenant that runs Auth0's documented step-up Action: hosted login
// pages (one per connection), an OTP page when MFA is required, a consent page,
// SSO, acr_values, max_age and prompt, PKCE, refresh-token rotation with reuse
// detection, PAR, CIBA, the MFA API (with OTP enrollment), RP-initiated and
// back-channel logout, organizations and invitations, rate limits, and the
// Management API calls of MFA self-service (factors, enrollment tickets,
// recovery codes, remembered browsers, user_metadata) — with Auth0's paths,
// status codes and error bodies, so that github.com/auth0/go-auth0/v3's own
// authentication and management clients work against it unchanged (the
// package's tests prove it).
//
// It is never kinder than Auth0: its defaults are a real tenant's defaults
// (MFA prompted each time acr_values asks, auth_time only with max_age or
// prompt=login, opaque access tokens without an audience, discovery without
// the features a tenant must enable), and where tenants differ by
// configuration a Config switch turns the other behaviour on. fidelity_test.go
// asserts each documented behaviour with its source.
//
// # Testing your app
//
// A Browser drives the user's own app end to end: Browser.Get (PostForm, Do)
// follows the app's redirects into the tenant, fills the login, social, OTP
// (from the user's TOTP secret), consent and logout pages, follows the
// callback back into the app and returns the app's final response; Pages says
// which tenant pages were shown. UserWithMFA, UserWithoutMFA, SocialUser and
// NewUser are fixtures; ClaimsAction is the post-login Action that copies the
// step-up evidence into namespaced access-token claims (StepUpAction alone is
// Auth0's documented step-up Action). See ExampleBrowser_Get.
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
//	// each time, even when the browser has an SSO session that performed MFA;
//	// the ID token then has "acr": MFAACR and "amr": ["mfa"].
//	b := tn.NewBrowser() // keeps the SSO cookie between logins
//	b.Login(ctx, loginURL, creds)   // b.Pages == [login]
//	b.Login(ctx, stepUpURL, creds)  // b.Pages == [otp]
//	b.Login(ctx, stepUpURL, creds)  // b.Pages == [otp] (Config.AllowRememberBrowser: [])
//
//	// Or the whole app: resp, err := b.Get(ctx, app.URL+"/salaries", auth0test.UserWithMFA())
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
// connections Username-Password-Authentication and google-oauth2; MFAACR honoured
// (no acr_values_supported in discovery); no refresh-token rotation; Auth0's
// default lifetimes (ID token 36000 s, access token 86400 s, refresh token 30
// days absolute and idle, session 7 days absolute and 3 days idle).
//
// # Config switches (default = Auth0's default)
//
//	AllowRememberBrowser     false  the Action's allowRememberBrowser: true (an SSO session's MFA counts again)
//	AlwaysIncludeAuthTime    false  auth_time in every ID token, not only with max_age / prompt=login
//	MFARequiredWithoutToken  false  mfa_required without mfa_token / mfa_requirements
//	EndSessionDiscovery      false  end_session_endpoint in discovery
//	PAR, CIBA                false  their endpoints in discovery (the endpoints answer either way)
//	ACRValuesSupported       nil    acr_values_supported published, and only listed values honoured
//	IssuerInAuthorizationResponse false  RFC 9207 iss on callbacks, advertised in discovery
//	RateLimits               none   per-endpoint request budgets (429 + X-RateLimit-*)
//	LogoutURLs               none   the tenant's Allowed Logout URLs (/v2/logout without client_id)
//	API.RBAC                 false  scopes limited to User.Permissions, "permissions" in access tokens
//	Application.ThirdParty   false  the consent page
//	Application.BackChannelLogoutURLs / BackChannelLogoutInitiators  none / custom: rp-logout,
//	                                idp-logout (Auth0: rp-logout stays subscribed by default)
//	BackChannelLogoutClient, BackChannelLogoutCAs  the client that delivers logout tokens
//	Application.ManagementScopes none  the client grant for the Management API (ManagementScopes: all)
//	Application.OrganizationUsage deny  Auth0's organization_usage: deny, allow or require
//	Organizations            none   organizations (id org_..., name, display name, members,
//	                                AssignMembershipOnLogin false: members only)
//	OrganizationNames        false  organization names on /authorize and org_name in tokens
//	RefreshActionAuthentication false  event.authentication on refresh exchanges (the login's)
//	RefreshTokenMetadata     false  api.refreshToken / event.refresh_token.metadata (Enterprise, Early Access)
//	Connection.DisplayName   Name   "Continue with ..." ("Google" for google-oauth2)
//	User.UserMetadata, AppMetadata  none  the user's metadata (Management API, ActionEvent.User)
//
// # Endpoints
//
//	GET  /.well-known/openid-configuration   discovery (issuer with trailing slash)
//	GET  /.well-known/jwks.json              current key, next key, previous key until RevokePreviousKey
//	GET  /authorize                          response_type=code only; PKCE S256 or plain; PAR request_uri
//	     /u/login, /u/social, /u/mfa-otp-challenge   hosted pages (HTML forms)
//	     /u/mfa-recovery-code-challenge      the OTP page's "use a recovery code" (the next code shown once)
//	POST /oauth/token                        authorization_code, refresh_token, client_credentials,
//	                                         urn:openid:params:grant-type:ciba, mfa-otp, mfa-oob, mfa-recovery-code
//	POST /oauth/revoke                       200 with an empty body; revokes the token's whole family
//	POST /oauth/par                          201 {"request_uri","expires_in":30}; single use
//	GET  /userinfo                           Bearer access token with the userinfo audience
//	POST /bc-authorize                       CIBA (poll mode)
//	GET  /mfa/authenticators, POST /mfa/challenge   MFA API (Bearer mfa_token, or an access
//	                                         token for https://{domain}/mfa/)
//	POST /mfa/associate, DELETE /mfa/authenticators/{id}   OTP enrollment and removal
//	GET  /v2/logout, GET|POST /oidc/logout   end the SSO session; returnTo / post_logout_redirect_uri checked
//	     /u/consent, /u/logout               consent and logout-confirmation pages
//	GET|POST /auth0test/ciba                 not Auth0's: pending CIBA requests and MFA push
//	                                         challenges with Approve/Deny buttons
//	GET|POST /u/guardian/enroll?ticket=      an enrollment ticket's page (OTP: secret, otpauth link, code)
//	Management API (Bearer client-credentials token for https://{domain}/api/v2/; scope checked):
//	GET    /api/v2/users/{id}                                       read:users
//	PATCH  /api/v2/users/{id}                (user_metadata, app_metadata, name)   update:users
//	GET    /api/v2/users/{id}/authentication-methods[/{amid}]      read:authentication_methods
//	DELETE /api/v2/users/{id}/authentication-methods/{amid}        delete:authentication_methods
//	GET    /api/v2/users/{id}/enrollments                           read:users
//	GET|DELETE /api/v2/guardian/enrollments/{id}    read:guardian_enrollments / delete:guardian_enrollments
//	POST   /api/v2/guardian/enrollments/ticket                      create:guardian_enrollment_tickets
//	POST   /api/v2/users/{id}/recovery-code-regeneration            update:users
//	POST   /api/v2/users/{id}/multifactor/actions/invalidate-remember-browser   update:users
//
// Management API errors have its own shape {"statusCode","error","message",
// "errorCode"}: 401 "Missing authentication", "Invalid token" or "Expired token
// received for JSON Web Token validation"; 403 "Insufficient scope, expected any
// of: <scope>" (insufficient_scope); 404 "The user does not exist."
// (inexistent_user); 400 payload validation errors (invalid_body).
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
// Browser (NewBrowser, Get, PostForm, Do, Login, Logout, DeclineLogout,
// HasSession, Pages, Trust) drives the hosted pages and the user's app over
// HTTP with a cookie jar; Tenant.Login uses a fresh Browser. TOTP and
// Tenant.OTP compute codes. Sign, SignWith, SigningKeys, IDTokenClaims and
// AccessTokenClaims mint tokens for negative tests. NewMFAToken, PendingOOB,
// ApproveOOB and DenyOOB drive the MFA API; PendingCIBA, ApproveCIBA and DenyCIBA the CIBA flow.
// AddCallbackURL and AddLogoutURL register URLs known only after start-up.
// Credentials.RecoveryCode makes a Browser use a recovery code at the MFA step
// (LastRecoveryCode returns the next one the tenant showed).
// Browser.Enroll (and LastEnrollment, when an app redirected to the ticket)
// completes an enrollment ticket and returns the OTP secret it enrolled;
// ManagementTokens counts client_credentials requests for the Management API
// (GrantCalls(GrantClientCredentials) counts every audience). Invite, AddMember
// and Members manage organizations.
// InjectFault, ClearFaults and ForgeIDTokens break things; Calls, GrantCalls,
// Endpoints, ResetCounters, RefreshLog and RefreshFamily count them;
// RevokeRefreshFamily, EndSession, EndSessions, ChangePassword, ChangeEmail,
// BlockUser and DeleteUser act as an administrator would (the ones that end
// sessions send back-channel logout tokens); LogoutDeliveries and
// InjectDeliveryFault show and break those deliveries; Sweep and Retained show
// that a long-running tenant stays bounded. The Tenant
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
//   - MFA and the SSO session: acr_values=MFAACR (or an API's MFAScopes, or the
//     Action's RequireMFA) shows the OTP page every time, as the documented
//     step-up Action (allowRememberBrowser: false) does on Auth0. With
//     Config.AllowRememberBrowser (or ActionAPI.RequireMFARememberBrowser) an SSO
//     session that performed MFA stands for the remembered browser: no OTP page,
//     amr ["mfa"] again. prompt=login, or max_age exceeded, re-authenticates fully
//     (password, then OTP). The session is created only when the whole login
//     (first factor and MFA) succeeds. A connection parameter different from the
//     session's forces a login.
//   - auth_time is in ID tokens from /authorize only when the request sent
//     max_age or prompt=login (or with Config.AlwaysIncludeAuthTime): the time of
//     the session's last first-factor authentication (completing MFA on an
//     existing SSO session does not change it, so max_age measures the age of
//     the password or social login). Refreshed ID tokens carry it when the
//     login's did, and neither amr nor acr: a refresh never changes a session's
//     step-up level. CIBA: auth_time is the approval time, no acr/amr. MFA API:
//     auth_time is the grant time, no acr/amr.
//   - Management API (a subset, for MFA self-service): tokens come only from
//     client_credentials with audience https://{domain}/api/v2/ and carry the
//     application's Application.ManagementScopes (no client grant: 403
//     access_denied; a requested scope outside the grant: 403 "Client has not
//     been granted scopes: ..."); 86400 s, whatever Config.AccessTokenLifetime
//     says. Factors: a user has at most one OTP factor (User.TOTPSecret) and one
//     recovery code. authentication-methods lists them as "totp" ("Authenticator
//     app") and "recovery-code" with created_at and, once an OTP code was
//     accepted (OTP page, mfa-otp grant, enrollment), last_auth_at; the MFA API
//     also shows the OTP factor's push pairing, the Management API does not. Ids
//     change with each enrollment, so an id from before a re-enrollment is 404.
//     GET users/{id}/enrollments is the legacy view (one "authenticator"
//     enrollment, status confirmed). Deleting a method, the Guardian enrollment or
//     the MFA API authenticator removes the factor: the OTP page and the mfa-otp
//     grant then refuse every code, and a user without a factor who needs MFA is
//     refused (access_denied). Pagination: page, per_page (1..100, default 50),
//     include_totals (an object {start, limit, total, authenticators}, else an
//     array). PATCH users/{id} accepts user_metadata, app_metadata (top-level
//     merge, null deletes a key, a null object empties it; each at most 16 KiB
//     serialized) and name; other members are 400 invalid_body (Auth0 accepts
//     many more). Recovery-code regeneration replaces the code (the old one
//     fails, the new one works once through mfa-recovery-code, whose answer
//     carries the next one). invalidate-remember-browser: an MFA performed at or
//     before that instant no longer stands for a remembered browser (it matters
//     only with AllowRememberBrowser or RequireMFARememberBrowser). x/oauth2's
//     clientcredentials tries client_secret_basic first: give an M2M
//     application TokenEndpointAuthMethod "client_secret_basic" for exactly one
//     token request. Not emulated: every other Management API endpoint, user
//     tokens for it, PATCH of authentication methods, its own rate limits (use
//     RateLimits).
//   - Enrollment tickets: ticket_url is https://{domain}/u/guardian/enroll?ticket=
//     (Auth0's host and path differ by tenant generation); factor "otp" only
//     (others 400); send_mail is accepted and no mail is sent; valid 24 hours
//     (not documented in what we found) and once. The page shows the secret and
//     an otpauth:// link, then asks for a code of that secret; a user who already
//     has an OTP factor gets an error page (already_enrolled) whatever
//     allow_multiple_enrollments says, since Auth0 enrolls each factor type once;
//     a user without a recovery code is shown a new one, once.
//   - Organizations: the organization parameter is an org_... id, or (with
//     OrganizationNames) a name, case-insensitively; organization_usage "deny"
//     refuses it (invalid_request "parameter organization is not allowed for
//     this client"), "require" demands it ("parameter organization is required
//     for this client"; the organization prompt is not emulated); an unknown one
//     is "parameter organization is invalid: ...". Membership is checked once the
//     user is known, on every login including SSO: a non-member gets
//     error=access_denied, "user {user_id} is not part of the {org_id}
//     organization" (the text users report from Auth0). Every connection is
//     enabled for every organization. org_id (and org_name with
//     OrganizationNames) is in ID and access tokens of the login and of its
//     refresh tokens; ActionEvent.Organization is event.organization.
//     Invitations (Invite): invitation requires organization; an unknown, used,
//     expired (7 days, Auth0's default ttl) or other organization's invitation is
//     invalid_request at /authorize; the user who logs in must have the
//     invitee's email (else access_denied, auth0test's choice), and becomes a
//     member; the invitation is then used up.
//   - The refresh-token Action (research, December 2026): Auth0's post-login
//     event object documents event.transaction.protocol "oauth2-refresh-token"
//     for refresh exchanges (docs: customize/actions/explore-triggers/
//     signup-and-login-triggers/login-trigger/post-login-event-object; Auth0
//     community answer "What's the difference between oauth2-token-exchange,
//     oauth2-access-token and oauth2-refresh-token") and event.refresh_token
//     "populated by refresh token exchange flows" (secure/tokens/refresh-tokens/
//     manage-refresh-tokens-actions, an Enterprise feature). event.authentication
//     is marked "(Optional)" and described as "the authentication methods a user
//     has completed during their session"; that page suggests combining it with
//     event.refresh_token, but nothing says whether a refresh exchange has it or
//     what timestamps it would carry. auth0test therefore gives none by default
//     (ActionEvent.Authentication nil, AuthenticationMethods nil), so code must
//     not depend on it; Config.RefreshActionAuthentication gives the methods of
//     the login that created the refresh token with their original timestamps,
//     to test code that uses them when present. ActionEvent.RefreshToken is a
//     subset of event.refresh_token (id, created_at, last_exchange_at,
//     session_id, metadata). CIBA: no documented protocol value was found;
//     auth0test reports "oidc-ciba" and no event.authentication.
//   - Refresh-token metadata (research, December 2026; docs:
//     secure/tokens/refresh-tokens/refresh-token-metadata and
//     .../refresh-token-metadata/configure-refresh-token-metadata; support
//     article "Management of Refresh Token Metadata in Early Access"): "Early
//     Access for Enterprise customers only", so off by default
//     (Config.RefreshTokenMetadata; without it api.refreshToken is absent:
//     ActionAPI.HasRefreshToken false, its methods do nothing). A post-login
//     Action sets it with api.refreshToken.setMetadata(key, value),
//     deleteMetadata(key) and evictMetadata() (ActionAPI.SetRefreshTokenMetadata,
//     DeleteRefreshTokenMetadata, EvictRefreshTokenMetadata) in the
//     authorization-code flow, CIBA and refresh-token exchanges (Auth0 also
//     lists password, device-code, federated and native-passkey flows, not
//     emulated; MFA-API grants are not listed: no api.refreshToken there).
//     It is readable only on refresh-token exchanges, in
//     event.refresh_token.metadata (ActionRefreshToken.Metadata), never at the
//     login that sets it. It is applied when the refresh token is issued
//     (not at an intermediate mfa_required or a denial) and kept by the
//     family: every token rotated from that login reads it. Limits: 25
//     entries, keys and values of at most 255 characters, keys of letters,
//     digits, "_" and "-"; Auth0 does not say what happens beyond them:
//     auth0test refuses the call (nothing set, a Warn line on Logger). The
//     Management API's GET/PATCH /api/v2/refresh-tokens/{id} is not emulated.
//     ClaimsAction keeps the step-up there (MetadataMFAAt, MetadataACR), as the
//     README's Action does.
//   - The Action's event.authentication.methods (ActionEvent.Authentication) is
//     the SSO session's first factor with its time (the session's auth_time) and,
//     once the session performed MFA, {"mfa", when the one-time code was last
//     accepted}. The Action runs after the first factor and before the MFA it
//     requests, so the login that performs MFA sees only the session's earlier
//     one; ClaimsAction therefore stamps a login that asks for MFA with the time
//     it ran. MFA API grants see [{"mfa", grant time}]; refresh exchanges and
//     CIBA none (see the research above).
//   - prompt=none: no session (or max_age exceeded) gives login_required; MFA
//     needed and not remembered gives interaction_required; consent needed gives
//     consent_required.
//   - A user without an enrolled factor who needs MFA at /authorize gets
//     error=access_denied (enrollment during login is not emulated); through the
//     MFA API, mfa_requirements says enroll and /mfa/associate enrolls an OTP
//     factor; an enrollment ticket's page enrolls one too.
//   - /mfa/associate: authenticator_types ["otp"] only; an mfa_token may enroll
//     only while the user has no factor, afterwards an access token for
//     https://{domain}/mfa/ with scope enroll; recovery_codes only when the user
//     has no recovery code yet; barcode_uri is otpauth://totp/{domain}:{email}.
//     The enrollment is confirmed by the mfa-otp grant with the mfa_token (or the
//     access token) that associated it, within 10 minutes. OTP and push are one
//     Guardian enrollment: deleting either id removes both (204; unknown id 404).
//     GET /mfa/authenticators accepts an mfa_token or an access token with
//     read:authenticators; DELETE only the access token with remove:authenticators.
//   - Authorization codes live 10 minutes; a replayed code is refused and revokes
//     the refresh-token family its first redemption created. An /authorize without
//     redirect_uri uses the application's first callback URL; the code exchange must
//     then repeat the authorization request's redirect_uri, or leave it out when
//     that request did. A code_verifier is refused for a code issued without
//     code_challenge. max_age=0 always re-authenticates. An abandoned login
//     (hosted pages never completed) is forgotten after 15 minutes.
//   - API access: without API.RBAC every scope the API defines is granted when
//     requested; with it, only those among the user's User.Permissions for the
//     API, and the access token lists those permissions. offline_access gives a
//     refresh token for any API. Third-party applications (and prompt=consent)
//     show a consent page; a grant is remembered per user and application.
//   - Access tokens: no jti; gty "refresh_token" after a refresh and
//     "client-credentials" for client credentials; none after an authorization
//     code. Without an audience the token is opaque (random, not a JWT),
//     accepted by /userinfo until it expires.
//   - JWKS: Cache-Control "public, max-age=300" (JWKSCacheControl), the lower
//     bound of Auth0's 5–10 minute caching advice; every other JSON answer is
//     no-store.
//   - private_key_jwt: the assertion's aud may be the issuer or the token endpoint
//     URL; exp must be at most 5 minutes away (go-auth0 uses 2); a jti is accepted
//     once. The header's kid is not required: every registered key is tried.
//   - The token endpoint enforces each application's TokenEndpointAuthMethod:
//     client_secret_basic and client_secret_post are not interchangeable (401
//     invalid_client). Clients using golang.org/x/oauth2 should set AuthStyle
//     explicitly (AuthStyleInParams for the default application), or its
//     auto-detection costs an extra failed request.
//   - PAR: public clients get 401 invalid_client. /oauth/par and /bc-authorize
//     answer whether or not Config.PAR / Config.CIBA advertise them.
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
//   - /v2/logout: an unknown client_id is an error page; without returnTo and
//     with no allowed URL, the tenant's "logged out" page. federated is accepted
//     and ignored. URLs match exactly once query and fragment are removed (no
//     wildcards).
//   - /oidc/logout: the id_token_hint may be expired but must be the tenant's;
//     without client_id it names the application by its aud. logout_hint alone
//     counts as a hint for the browser's session. The confirmation page (no
//     hint, or a hint that is not the browser's session) ends the browser's
//     session on "accept" and nothing on "deny"; it lives 10 minutes.
//   - Back-channel logout: the token's header is {"alg":"RS256","typ":"logout+jwt",
//     "kid"} (the spec's explicit typing), exp is iat + 2 minutes, jti random;
//     aud is the application, sid and sub the ended session's. Every application
//     that logged in with the session and has a back-channel URL whose
//     initiators include the event is called, synchronously, once (no retry; 5 s
//     timeout), so a test sees LogoutDeliveries as soon as the call returns. The
//     initiators: rp-logout for /v2/logout and /oidc/logout, session-revoked for
//     EndSession and BlockUser, password-changed for ChangePassword,
//     email-identifier-changed for ChangeEmail, account-deleted for DeleteUser,
//     session-expired for sessions the sweep finds expired; idp-logout is never
//     sent (no upstream identity provider). Discovery advertises back-channel
//     logout when an application has a back-channel URL. The URL must be https
//     (Auth0 also refuses loopback addresses; auth0test must not, to reach a
//     test server).
//   - Rate limits: a fixed window per endpoint path; X-RateLimit-Reset is the
//     window's end in UNIX seconds; a 429 adds Retry-After.
//   - Memory: every record kind expires; one request in 256 (and Sweep) drops
//     what is past its lifetime, the refresh log keeps its newest 4096 entries
//     and the delivery log its newest 1024. No goroutine is started.
//   - The SSO cookie is "auth0" (Secure, HttpOnly, SameSite=None).
//
// # What it does not emulate
//
// Implicit and hybrid flows, response_mode form_post and web_message, the password
// and password-realm grants, device code, token exchange, mTLS client
// authentication, JWE access tokens, MFA enrollment during login (the MFA API
// and enrollment tickets enroll OTP), SMS/email/WebAuthn/push factors, the
// Management API beyond the subset above, organization prompts, roles and
// connections, plans (every feature is available), custom domains and
// Universal Login's own markup. The hosted pages look like a tenant's (a small
// embedded stylesheet, the application's name, the connection's display name,
// the user's email on the code page) but are plain forms meant for Browser and
// for people in a demo; their markup (data-page and data-error attributes, the
// form field names) is the only contract Browser relies on.
package auth0test
