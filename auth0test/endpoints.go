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
	if app.TokenEndpointAuthMethod == "none" {
		// Auth0: PAR is for confidential clients only (authorization-code-flow-with-par).
		writeError(w, http.StatusUnauthorized, "invalid_client", "Pushed Authorization Requests need a confidential client")
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
	doc := map[string]any{
		"issuer":                                           iss,
		"authorization_endpoint":                           iss + "authorize",
		"token_endpoint":                                   iss + "oauth/token",
		"userinfo_endpoint":                                iss + "userinfo",
		"mfa_challenge_endpoint":                           iss + "mfa/challenge",
		"jwks_uri":                                         iss + ".well-known/jwks.json",
		"revocation_endpoint":                              iss + "oauth/revoke",
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
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "RS384", "PS256"},
	}
	// Auth0 publishes these only where the tenant has the feature enabled
	// (configure-applications-with-oidc-discovery, log-users-out-of-auth0,
	// back-channel-logout); so does auth0test, from Config.
	if t.cfg.EndSessionDiscovery {
		doc["end_session_endpoint"] = iss + "oidc/logout"
	}
	if t.cfg.PAR {
		doc["pushed_authorization_request_endpoint"] = iss + "oauth/par"
		doc["require_pushed_authorization_requests"] = false
	}
	if t.cfg.CIBA {
		doc["backchannel_authentication_endpoint"] = iss + "bc-authorize"
		doc["backchannel_token_delivery_modes_supported"] = []string{"poll"}
	}
	if t.backChannelEnabled() {
		doc["backchannel_logout_supported"] = true
		doc["backchannel_logout_session_supported"] = true
	}
	if t.cfg.ACRValuesSupported != nil {
		doc["acr_values_supported"] = t.cfg.ACRValuesSupported
	}
	if t.cfg.IssuerInAuthorizationResponse {
		doc["authorization_response_iss_parameter_supported"] = true
	}
	writeJSON(w, http.StatusOK, doc)
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
	claims, ok := t.opaqueClaims(tok)
	var err error
	if !ok {
		_, claims, err = t.verifyJWT(tok, true)
	}
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
