package auth0test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const parLifetime = 30 * time.Second

type parRequest struct {
	clientID string
	params   url.Values
	expires  time.Time
}

func (t *Tenant) handlePAR(w http.ResponseWriter, r *http.Request) {
	if !allowPOST(w, r) {
		return
	}
	form, app, ok := t.readClientForm(w, r)
	if !ok {
		return
	}
	if form.Get("request_uri") != "" {
		invalidRequest("request_uri must not be sent to the PAR endpoint").write(w)
		return
	}
	if form.Get("response_type") == "" {
		invalidRequest("Missing required parameter: response_type").write(w)
		return
	}
	ru := form.Get("redirect_uri")
	if ru == "" {
		invalidRequest("Missing required parameter: redirect_uri").write(w)
		return
	}
	if !slices.Contains(app.CallbackURLs, ru) {
		invalidRequest("Callback URL mismatch. " + ru + " is not in the list of allowed callback URLs").write(w)
		return
	}
	params := url.Values{}
	for k, v := range form {
		switch k {
		case "client_id", "client_secret", "client_assertion", "client_assertion_type":
		default:
			params[k] = slices.Clone(v)
		}
	}
	uri := "urn:ietf:params:oauth:request_uri:" + randomToken(24)
	t.mu.Lock()
	t.pars[uri] = &parRequest{clientID: app.ClientID, params: params, expires: t.cfg.Now().Add(parLifetime)}
	t.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"request_uri": uri, "expires_in": int64(parLifetime / time.Second)})
}

func (t *Tenant) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed")
		return
	}
	iss := t.Issuer()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                           iss,
		"authorization_endpoint":                           iss + "authorize",
		"token_endpoint":                                   iss + "oauth/token",
		"userinfo_endpoint":                                iss + "userinfo",
		"mfa_challenge_endpoint":                           iss + "mfa/challenge",
		"jwks_uri":                                         iss + ".well-known/jwks.json",
		"revocation_endpoint":                              iss + "oauth/revoke",
		"end_session_endpoint":                             iss + "oidc/logout",
		"pushed_authorization_request_endpoint":            iss + "oauth/par",
		"backchannel_authentication_endpoint":              iss + "bc-authorize",
		"backchannel_token_delivery_modes_supported":       []string{"poll"},
		"require_pushed_authorization_requests":            false,
		"scopes_supported":                                 []string{"openid", "profile", "offline_access", "name", "given_name", "family_name", "nickname", "email", "email_verified", "picture", "created_at", "identities", "phone", "address"},
		"response_types_supported":                         []string{"code"},
		"code_challenge_methods_supported":                 []string{"S256", "plain"},
		"response_modes_supported":                         []string{"query"},
		"subject_types_supported":                          []string{"public"},
		"id_token_signing_alg_values_supported":            []string{"HS256", "RS256", "PS256"},
		"token_endpoint_auth_methods_supported":            []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		"claims_supported":                                 []string{"aud", "auth_time", "created_at", "email", "email_verified", "exp", "family_name", "given_name", "iat", "identities", "iss", "name", "nickname", "phone_number", "picture", "sub"},
		"request_uri_parameter_supported":                  false,
		"request_parameter_supported":                      false,
		"acr_values_supported":                             t.cfg.ACRValuesSupported,
		"authorization_response_iss_parameter_supported":   t.cfg.IssuerInAuthorizationResponse,
		"grant_types_supported":                            []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantCIBA, GrantMFAOTP, GrantMFAOOB, GrantMFARecoveryCode},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "RS384", "PS256"},
	})
}

func (t *Tenant) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed")
		return
	}
	unauthorized := func() {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="Invalid token"`)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("Unauthorized"))
	}
	tok := bearer(r)
	if tok == "" {
		unauthorized()
		return
	}
	_, claims, err := t.verifyJWT(tok, true)
	if err != nil || !slices.Contains(audiences(claims["aud"]), t.Issuer()+"userinfo") {
		unauthorized()
		return
	}
	sub, _ := claims["sub"].(string)
	user, ok := t.userByID(sub)
	if !ok {
		unauthorized()
		return
	}
	scope, _ := claims["scope"].(string)
	scopes := strings.Fields(scope)
	out := map[string]any{"sub": user.ID}
	if slices.Contains(scopes, "profile") {
		out["name"] = user.Name
		out["nickname"] = nickname(user.Email)
		out["updated_at"] = "2026-01-01T00:00:00.000Z"
	}
	if slices.Contains(scopes, "email") {
		out["email"] = user.Email
		out["email_verified"] = true
	}
	writeJSON(w, http.StatusOK, out)
}

// endSession deletes the browser's SSO session and expires its cookie.
func (t *Tenant) endSession(w http.ResponseWriter, r *http.Request, sid string) {
	t.mu.Lock()
	if c, err := r.Cookie(sessionCookie); err == nil {
		delete(t.sessions, c.Value)
	}
	if sid != "" {
		for k, s := range t.sessions {
			if s.sid == sid {
				delete(t.sessions, k)
			}
		}
	}
	t.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: true, SameSite: http.SameSiteNoneMode})
}

// EndSessions ends every SSO session of the tenant (as if every browser logged out).
func (t *Tenant) EndSessions() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.sessions)
}

func (t *Tenant) handleV2Logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		t.pageError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed")
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		t.pageError(w, http.StatusBadRequest, "invalid_request", "malformed query string")
		return
	}
	returnTo := q.Get("returnTo")
	if returnTo != "" {
		if !t.logoutURLAllowed(q.Get("client_id"), returnTo) {
			t.pageError(w, http.StatusBadRequest, "invalid_request",
				"The \"returnTo\" querystring parameter \""+returnTo+"\" is not defined as a valid URL in \"Allowed Logout URLs\".")
			return
		}
	}
	t.endSession(w, r, "")
	if returnTo == "" {
		renderPage(w, http.StatusOK, pageData{Page: "logout", Title: "Logged out"})
		return
	}
	http.Redirect(w, r, returnTo, http.StatusFound)
}

func (t *Tenant) handleOIDCLogout(w http.ResponseWriter, r *http.Request) {
	q, err := parseQueryStrict(r)
	if err != nil {
		t.pageError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	clientID := q.Get("client_id")
	if hint := q.Get("id_token_hint"); hint != "" {
		// An expired ID token is still a valid hint.
		_, claims, err := t.verifyJWT(hint, false)
		if err != nil {
			t.pageError(w, http.StatusBadRequest, "invalid_request", "Invalid id_token_hint")
			return
		}
		aud := audiences(claims["aud"])
		if clientID != "" && !slices.Contains(aud, clientID) {
			t.pageError(w, http.StatusBadRequest, "invalid_request", "client_id does not match the id_token_hint audience")
			return
		}
		if clientID == "" && len(aud) > 0 {
			clientID = aud[0]
		}
	}
	post := q.Get("post_logout_redirect_uri")
	if post != "" {
		if !t.logoutURLAllowed(clientID, post) {
			t.pageError(w, http.StatusBadRequest, "invalid_request",
				"post_logout_redirect_uri \""+post+"\" is not an allowed logout URL of the client (send client_id or id_token_hint)")
			return
		}
	}
	t.endSession(w, r, q.Get("logout_hint"))
	if post == "" {
		renderPage(w, http.StatusOK, pageData{Page: "logout", Title: "Logged out"})
		return
	}
	u, err := url.Parse(post)
	if err != nil {
		t.pageError(w, http.StatusBadRequest, "invalid_request", "invalid post_logout_redirect_uri")
		return
	}
	if st := q.Get("state"); st != "" {
		qq := u.Query()
		qq.Set("state", st)
		u.RawQuery = qq.Encode()
	}
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// logoutURLAllowed says whether u is one of the Allowed Logout URLs of the
// application clientID.
func (t *Tenant) logoutURLAllowed(clientID, u string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	app, ok := t.apps[clientID]
	return ok && slices.Contains(app.LogoutURLs, u)
}
