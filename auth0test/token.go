package auth0test

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// oidcScopes are granted whatever the audience.
var oidcScopes = []string{"openid", "profile", "email", "address", "phone", "offline_access"}

// authenticateClient identifies and authenticates the client of a back-channel
// request, enforcing the application's token endpoint auth method.
func (t *Tenant) authenticateClient(r *http.Request, form url.Values) (*Application, *oauthError) {
	clientID := form.Get("client_id")
	secret := form.Get("client_secret")
	method := "client_secret_post"
	if user, pass, ok := r.BasicAuth(); ok {
		u, err1 := url.QueryUnescape(user)
		p, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return nil, newErr(http.StatusUnauthorized, "invalid_client", "Malformed Authorization header")
		}
		if clientID != "" && clientID != u {
			return nil, invalidRequest("client_id in the body and in the Authorization header differ")
		}
		if secret != "" {
			return nil, invalidRequest("Only one client authentication method may be used")
		}
		clientID, secret, method = u, p, "client_secret_basic"
	} else if secret == "" {
		method = "none"
	}
	assertion := form.Get("client_assertion")
	if assertion != "" || form.Get("client_assertion_type") != "" {
		if secret != "" || method == "client_secret_basic" {
			return nil, invalidRequest("Only one client authentication method may be used")
		}
		return t.authenticateAssertion(clientID, form.Get("client_assertion_type"), assertion)
	}
	if clientID == "" {
		return nil, newErr(http.StatusUnauthorized, "invalid_client", "Missing required parameter: client_id")
	}
	t.mu.Lock()
	app, ok := t.apps[clientID]
	t.mu.Unlock()
	if !ok {
		return nil, newErr(http.StatusUnauthorized, "invalid_client", "Unknown client.")
	}
	want := app.TokenEndpointAuthMethod
	if want == "private_key_jwt" {
		return nil, newErr(http.StatusUnauthorized, "invalid_client", "Client authentication failed: the application uses private_key_jwt: send client_assertion")
	}
	if want == "none" {
		// A public client has no secret to check; whatever it sends is ignored.
		return app, nil
	}
	if method == "none" {
		return nil, newErr(http.StatusUnauthorized, "invalid_client", "Client authentication is required: send client_secret")
	}
	if method != want {
		return nil, newErr(http.StatusUnauthorized, "invalid_client",
			"Client authentication failed: the application uses "+want+", not "+method)
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(app.ClientSecret)) != 1 {
		return nil, newErr(http.StatusUnauthorized, "invalid_client", "Client authentication failed: wrong client secret")
	}
	return app, nil
}

// grantTypeOf extracts the grant type of a /oauth/token request without
// consuming its body (the counters see faulted requests too).
func grantTypeOf(r *http.Request) string {
	form, err := parseBody(r)
	if err != nil {
		return ""
	}
	return form.Get("grant_type")
}

func (t *Tenant) handleToken(w http.ResponseWriter, r *http.Request) {
	if !allowPOST(w, r) {
		return
	}
	form, ok := readForm(w, r)
	if !ok {
		return
	}
	grant := form.Get("grant_type")
	if grant == "" {
		invalidRequest("Missing required parameter: grant_type").write(w)
		return
	}
	switch grant {
	case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantCIBA, GrantMFAOTP, GrantMFAOOB, GrantMFARecoveryCode:
	default:
		writeError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type: "+grant)
		return
	}
	app, oe := t.authenticateClient(r, form)
	if oe != nil {
		oe.write(w)
		return
	}
	if !slices.Contains(app.GrantTypes, grant) {
		writeError(w, http.StatusForbidden, "unauthorized_client", "Grant type '"+grant+"' not allowed for the client.")
		return
	}
	var resp map[string]any
	switch grant {
	case GrantAuthorizationCode:
		resp, oe = t.grantAuthorizationCode(app, form)
	case GrantRefreshToken:
		resp, oe = t.grantRefreshToken(app, form)
	case GrantClientCredentials:
		resp, oe = t.grantClientCredentials(app, form)
	case GrantCIBA:
		resp, oe = t.grantCIBA(w, app, form)
	case GrantMFAOTP, GrantMFAOOB, GrantMFARecoveryCode:
		resp, oe = t.grantMFA(app, grant, form)
	}
	if oe != nil {
		oe.write(w)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (t *Tenant) grantAuthorizationCode(app *Application, form url.Values) (map[string]any, *oauthError) {
	code := form.Get("code")
	if code == "" {
		return nil, invalidRequest("Missing required parameter: code")
	}
	invalid := newErr(http.StatusForbidden, "invalid_grant", "Invalid authorization code")
	now := t.cfg.Now()
	t.mu.Lock()
	ac, ok := t.codes[code]
	if !ok || ac.clientID != app.ClientID {
		t.mu.Unlock()
		return nil, invalid
	}
	if ac.used {
		// A replayed code: revoke what the first redemption issued (RFC 6749 4.1.2).
		if f := t.families[ac.familyID]; f != nil && !f.revoked {
			f.revoked = true
			t.logRefreshLocked(f.id, "revoked", now)
		}
		t.mu.Unlock()
		return nil, invalid
	}
	if now.After(ac.expires) {
		delete(t.codes, code)
		t.mu.Unlock()
		return nil, invalid
	}
	// redirect_uri must repeat the authorization request's; it may be left out
	// only when the authorization request left it out too (RFC 6749 4.1.3).
	if ru := form.Get("redirect_uri"); ru != ac.redirectURI && (ac.redirectSent || ru != "") {
		t.mu.Unlock()
		return nil, newErr(http.StatusForbidden, "invalid_grant", "redirect_uri does not match the one of the authorization request")
	}
	verifier := form.Get("code_verifier")
	if ac.challenge != "" || verifier != "" {
		if !pkceOK(ac.challenge, ac.method, verifier) {
			t.mu.Unlock()
			return nil, newErr(http.StatusForbidden, "invalid_grant", "Failed to verify code verifier")
		}
	}
	ac.used = true
	u := t.userByIDLocked(ac.userID)
	var user User
	if u != nil {
		user = *u
	}
	t.mu.Unlock()
	if u == nil {
		return nil, invalid
	}
	resp, familyID := t.issueTokens(tokenRequest{
		app: app, user: &user, scopes: ac.scopes, audience: ac.audience, nonce: ac.nonce, sid: ac.sid,
		authTime: ac.authTime, acr: ac.acr, amr: ac.amr, idClaims: ac.idClaims, atClaims: ac.atClaims, org: ac.org,
		methods: ac.methods, rtMeta: ac.rtMeta,
	})
	t.mu.Lock()
	ac.familyID = familyID
	t.mu.Unlock()
	return resp, nil
}

// pkceOK checks a code_verifier (RFC 7636): 43 to 128 unreserved characters whose
// S256 (or plain) transform equals the challenge.
func pkceOK(challenge, method, verifier string) bool {
	if challenge == "" || len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for _, c := range verifier {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)) {
			return false
		}
	}
	got := verifier
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		got = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

func (t *Tenant) grantClientCredentials(app *Application, form url.Values) (map[string]any, *oauthError) {
	if app.TokenEndpointAuthMethod == "none" {
		return nil, newErr(http.StatusForbidden, "unauthorized_client", "Grant type 'client_credentials' not allowed for public clients.")
	}
	audience := form.Get("audience")
	if audience == "" {
		return nil, newErr(http.StatusForbidden, "access_denied", "No audience parameter was provided, and no default audience has been configured")
	}
	if audience == t.managementAudience() {
		return t.managementGrant(app, form)
	}
	t.mu.Lock()
	api, ok := t.apis[audience]
	var scopes []string
	if ok {
		scopes = append(scopes, api.Scopes...)
	}
	t.mu.Unlock()
	if !ok {
		return nil, newErr(http.StatusForbidden, "access_denied", "Service not found: "+audience)
	}
	if s := form.Get("scope"); s != "" {
		req := strings.Fields(s)
		scopes = slices.DeleteFunc(scopes, func(x string) bool { return !slices.Contains(req, x) })
	}
	resp, _ := t.issueTokens(tokenRequest{app: app, scopes: scopes, audience: audience, gty: "client-credentials", m2m: true})
	return resp, nil
}

// tokenRequest is what a grant decided to issue.
type tokenRequest struct {
	app      *Application
	user     *User // nil for client credentials
	scopes   []string
	audience string
	nonce    string
	sid      string
	authTime time.Time // zero: no auth_time claim
	acr      string
	amr      []string
	idClaims map[string]any
	atClaims map[string]any
	gty      string
	m2m      bool
	org      *ActionOrganization // org_id (and org_name) in both tokens
	methods  []AuthMethod        // the login's authentication methods (kept by a new family)
	rtMeta   map[string]string   // refresh-token metadata the Action set (kept by a new family)
	// refresh: the family to continue (no new family), and whether to return a
	// new refresh token in it (rotation).
	family      *family
	rotateValue string // refresh token to return (already registered) when rotating
	noRefresh   bool   // never return a refresh token (non-rotating exchange)
}

// grantedScopes filters requested scopes as Auth0 does: OIDC scopes, plus the
// scopes the audience's API defines.
func (t *Tenant) grantedScopes(requested []string, audience string, user *User) []string {
	t.mu.Lock()
	api := t.apis[audience]
	t.mu.Unlock()
	var perms []string
	if user != nil {
		perms = user.Permissions[audience]
	}
	var out []string
	for _, s := range requested {
		if slices.Contains(out, s) {
			continue
		}
		if slices.Contains(oidcScopes, s) || (api != nil && slices.Contains(api.Scopes, s) &&
			(!api.RBAC || slices.Contains(perms, s))) {
			out = append(out, s)
		}
	}
	return out
}

// issueTokens mints the token response. It returns the refresh-token family id
// when a new family was created.
func (t *Tenant) issueTokens(tr tokenRequest) (map[string]any, string) {
	now := t.cfg.Now()
	scopes := tr.scopes
	if !tr.m2m {
		scopes = t.grantedScopes(tr.scopes, tr.audience, tr.user)
	}
	t.mu.Lock()
	key := t.current
	api := t.apis[tr.audience]
	forge := t.forge
	t.mu.Unlock()

	atLifetime := t.cfg.AccessTokenLifetime
	if api != nil && api.AccessTokenLifetime > 0 {
		atLifetime = api.AccessTokenLifetime
	}
	hasOpenID := slices.Contains(scopes, "openid")
	var aud any
	switch {
	case tr.audience != "" && hasOpenID:
		aud = []any{tr.audience, t.Issuer() + "userinfo"}
	case tr.audience != "":
		aud = tr.audience
	default:
		aud = t.Issuer() + "userinfo"
	}
	at := map[string]any{}
	for k, v := range tr.atClaims {
		at[k] = v
	}
	sub := tr.app.ClientID + "@clients"
	if tr.user != nil {
		sub = tr.user.ID
	}
	at["iss"] = t.Issuer()
	at["sub"] = sub
	at["aud"] = aud
	at["iat"] = now.Unix()
	at["exp"] = now.Add(atLifetime).Unix()
	// Auth0's profile has no jti.
	at["azp"] = tr.app.ClientID
	if len(scopes) > 0 {
		at["scope"] = strings.Join(scopes, " ")
	}
	if tr.gty != "" {
		at["gty"] = tr.gty
	}
	t.orgClaims(at, tr.org)
	if api != nil && api.RBAC {
		perms := []string{}
		if tr.user != nil {
			perms = append(perms, tr.user.Permissions[api.Identifier]...)
		}
		at["permissions"] = perms
	}
	var accessToken string
	if tr.audience == "" {
		// No audience: Auth0 issues an opaque token, good for /userinfo only.
		accessToken = t.newOpaqueToken(at, now.Add(atLifetime))
	} else {
		accessToken = signJWT(key.priv, map[string]any{"alg": "RS256", "typ": "JWT", "kid": key.kid}, at)
	}
	resp := map[string]any{
		"access_token": accessToken,
		"token_type":   "Bearer",
		"expires_in":   int64(atLifetime / time.Second),
	}
	if len(scopes) > 0 {
		resp["scope"] = strings.Join(scopes, " ")
	}
	if tr.user != nil && hasOpenID {
		idc := map[string]any{}
		for k, v := range tr.idClaims {
			idc[k] = v
		}
		idc["iss"] = t.Issuer()
		idc["sub"] = tr.user.ID
		idc["aud"] = tr.app.ClientID
		idc["iat"] = now.Unix()
		idc["exp"] = now.Add(t.cfg.IDTokenLifetime).Unix()
		if tr.nonce != "" {
			idc["nonce"] = tr.nonce
		}
		if tr.sid != "" {
			idc["sid"] = tr.sid
		}
		if !tr.authTime.IsZero() {
			idc["auth_time"] = tr.authTime.Unix()
		}
		t.orgClaims(idc, tr.org)
		if tr.acr != "" {
			idc["acr"] = tr.acr
		}
		if len(tr.amr) > 0 {
			idc["amr"] = append([]string(nil), tr.amr...)
		}
		if slices.Contains(scopes, "profile") {
			idc["name"] = tr.user.Name
			idc["nickname"] = nickname(tr.user.Email)
			idc["updated_at"] = "2026-01-01T00:00:00.000Z"
		}
		if slices.Contains(scopes, "email") {
			idc["email"] = tr.user.Email
			idc["email_verified"] = true
		}
		var hdr map[string]any
		var signKey any
		if tr.app.IDTokenAlg == "HS256" {
			hdr = map[string]any{"alg": "HS256", "typ": "JWT"}
			signKey = []byte(tr.app.ClientSecret)
		} else {
			hdr = map[string]any{"alg": "RS256", "typ": "JWT", "kid": key.kid}
			signKey = key.priv
		}
		if forge != nil {
			forge(hdr, idc)
		}
		resp["id_token"] = signJWT(signKey, hdr, idc)
	}
	newFamily := ""
	switch {
	case tr.rotateValue != "":
		resp["refresh_token"] = tr.rotateValue
	case tr.family != nil || tr.noRefresh || tr.user == nil:
	case slices.Contains(scopes, "offline_access") && slices.Contains(tr.app.GrantTypes, GrantRefreshToken):
		value, fid := t.newFamily(tr, scopes, now)
		resp["refresh_token"] = value
		newFamily = fid
	}
	return resp, newFamily
}

// orgClaims adds org_id, and org_name when the tenant allows organization
// names in the Authentication API (Config.OrganizationNames).
func (t *Tenant) orgClaims(claims map[string]any, org *ActionOrganization) {
	if org == nil {
		return
	}
	claims["org_id"] = org.ID
	if t.cfg.OrganizationNames {
		claims["org_name"] = org.Name
	}
}

func nickname(email string) string {
	n, _, _ := strings.Cut(email, "@")
	return n
}
