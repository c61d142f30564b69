// Package stepup lets a Go backend demand a stronger authentication
// (multi-factor, or a recent one) from a user before it serves a sensitive
// page or API call, on Auth0 — and keeps the proof of that step-up in a store
// that every replica and background worker shares.
//
// # What it is for
//
//   - Web backends (net/http and any router that takes
//     func(http.Handler) http.Handler): Client.RequireLogin and
//     Client.RequireStepUp(policy) protect pages; a browser is sent through
//     Auth0's /authorize with acr_values and max_age, a non-browser request
//     gets 401. Client.CallbackHandler and Client.LogoutHandler complete the
//     flow; LogoutHandler signs out only on a POST from the app's own pages
//     (another site's link or form is refused), then ends Auth0's session at
//     /oidc/logout. Client.BackChannelLogoutHandler receives Auth0's
//     back-channel logout tokens and ends that Auth0 session's (or user's)
//     sessions on every replica; Client.LogoutUser does it for admin actions.
//   - Code that is not net/http: Client.AuthorizeURL, Client.Exchange,
//     Client.StartSession and Client.LoadSession are the same steps without
//     HTTP plumbing.
//   - APIs (resource servers): Verifier.Require(policy) checks access tokens
//     (scopes, and acr, amr and auth_time, which an Auth0 Action copies into
//     them under a namespace: VerifierConfig.ClaimNamespace) and answers a
//     token without the step-up with an RFC 9470 challenge (401,
//     error="insufficient_user_authentication", acr_values, max_age).
//     NewVerifier makes one; Client.Verifier shares the Client's key cache.
//   - Web backends that call such an API for their users: APIClient.Do sends
//     the session's access token and turns the API's challenge into a
//     *StepUpNeededError; Client.StepUp sends the browser through the step-up
//     with the challenge's acr_values and max_age unchanged, and returns
//     ErrStepUpLoop rather than asking twice for the same thing.
//   - Background workers: a session has a stable Handle. Client.SessionFor
//     reads it back in a job and applies the action's own Policy;
//     Client.TokenSource gives the user's access token, refreshed by one
//     worker across all replicas (rotating refresh tokens are never
//     presented twice); Client.StepUpCIBA (a push to the user's device) and
//     Client.CompleteMFA (the MFA API) get a fresh approval out of band;
//     Client.Logout ends a session for good and revokes its refresh tokens.
//
// A Policy says what is enough: acceptable acr values (Auth0's MFA class is
// ACRMultiFactor), required amr values ("mfa"), and a maximum age of the
// authentication. MFA is the policy Auth0's step-up documentation intends:
// acr is the multi-factor class AND amr contains "mfa" — the sample check
// copied from Auth0's page rejects when amr contains "mfa", which is
// inverted. Config.ConnectionPolicies adapts policies per identity provider
// (see Client.PolicyFor).
//
// A step-up the tenant did not perform (a tenant without a step-up Action, or
// that does not list the class in acr_values_supported) is a *StepUpError with
// ReasonNotPerformed, answered with an error page, never a silent pass and
// never a second redirect.
//
// # Security properties
//
// Every authorization uses a 256-bit state and nonce and PKCE S256. Its
// transaction travels with the browser that started it, in a cookie sealed
// with the key ring and bound to the state (AuthorizeRequest.Cookie), so an
// anonymous visitor writes nothing to the store and a stolen callback URL is
// useless in another browser (it cancels nothing either); one set-if-absent
// marker in the store makes each callback succeed once on any replica. The ID token is verified by this
// package (signature with a JWKS cache that refetches on key rotation, iss,
// aud, azp, exp, iat, sub, nonce, auth_time against max_age), and a token
// response without an id_token is refused. Return paths are local only.
// Session cookies are HttpOnly, SameSite=Lax, and Secure with the __Host-
// prefix on https; their secret rotates at every login and step-up. Every
// record (sessions, token records, leases, out-of-band evidence) is sealed
// with AES-256-GCM under a key ring before it reaches the store, bound to its
// key: a record written without the keys, or moved, is absent. When the store, the tenant or its keys are unavailable,
// nothing is let through: callers get errors matching ErrTenantUnavailable or
// store.ErrUnavailable, and users a 503 page; each store call made for a
// request is bounded by Config.StoreTimeout, so a hung store answers 503
// quickly.
//
// # What it is not for
//
// It is not a general OpenID Connect library: it speaks to Auth0 (and to the
// dev tenant in package auth0test) with Auth0's endpoints, claims and
// defaults, and does no discovery. It does not do the implicit or hybrid
// flows, form_post responses, single-page or native apps (public clients), or
// the Management API. It is not a session framework for arbitrary data: a
// session holds the user's identity, authentication evidence and tokens.
//
// # Stores
//
// State lives in a store.Store: the in-memory store (the default, one process)
// or redisstore for replicas and workers. Records are encoded and sealed by
// the Client; a store only keeps bytes with a TTL.
package stepup
