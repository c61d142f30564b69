package auth0test

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	codeLifetime   = 10 * time.Minute
	loginTxTimeout = 15 * time.Minute
	sessionCookie  = "auth0"
)

// authRequest is a validated /authorize request.
type authRequest struct {
	clientID            string
	redirectURI         string
	redirectSent        bool // redirect_uri was in the request (not defaulted)
	scopes              []string
	state               string
	nonce               string
	codeChallenge       string
	codeChallengeMethod string
	audience            string
	connection          string
	prompt              []string
	loginHint           string
	acrValues           []string
	maxAge              int                 // -1: not sent
	org                 *ActionOrganization // the organization parameter, resolved
	invitation          string
}

func (a *authRequest) hasPrompt(p string) bool { return slices.Contains(a.prompt, p) }

// session is the tenant's SSO session, keyed by the value of its cookie.
type session struct {
	key        string
	sid        string
	userID     string
	connection string
	authTime   time.Time // first factor
	methods    []string
	mfaTime    time.Time // when "mfa" was added to methods
	created    time.Time
	lastUsed   time.Time
	clients    []string // applications that logged in with this session (back-channel logout)
}

// loginTx is an authorization request in progress on the hosted pages.
type loginTx struct {
	id      string
	req     authRequest
	created time.Time
	// set once the first factor is known (login form, social page or SSO session)
	userID      string
	connection  string
	authTime    time.Time
	methods     []string
	mfaTime     time.Time // when the one-time code was accepted (methods has "mfa")
	fresh       bool      // the first factor was performed in this transaction
	sessionKey  string    // the SSO session it continues, when not fresh
	sid         string
	action      *ActionAPI
	awaitingOTP bool
	// a recovery code was used: the new one is shown and must be acknowledged
	awaitingRecoveryAck bool
	// consent page (third-party applications, prompt=consent)
	awaitingConsent bool
	consented       bool
}

type authCode struct {
	clientID     string
	redirectURI  string
	redirectSent bool
	challenge    string
	method       string
	userID       string
	scopes       []string
	audience     string
	nonce        string
	sid          string
	authTime     time.Time
	acr          string
	amr          []string
	idClaims     map[string]any
	atClaims     map[string]any
	expires      time.Time
	used         bool
	familyID     string
	org          *ActionOrganization
	methods      []AuthMethod      // the login's event.authentication.methods, kept by its refresh tokens
	rtMeta       map[string]string // the Action's refresh-token metadata, for the family the code creates
}

// pageError renders the tenant's error page (no redirect is possible).
func (t *Tenant) pageError(w http.ResponseWriter, status int, code, description string) {
	renderPage(w, status, pageData{Page: "error", Title: "Error", Error: code, Message: description})
}

// hostedQuery starts an endpoint the browser navigates to (/authorize, the
// logout endpoints): a method other than those given is 405, a malformed or
// repeated parameter 400 (parseQueryStrict), both as the tenant's error
// page; false then, and the handler returns.
func (t *Tenant) hostedQuery(w http.ResponseWriter, r *http.Request, methods ...string) (url.Values, bool) {
	if !slices.Contains(methods, r.Method) {
		t.pageError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed")
		return nil, false
	}
	q, err := parseQueryStrict(r)
	if err != nil {
		t.pageError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return nil, false
	}
	return q, true
}

// hostedForm starts a hosted page's form handler (GET shows it, POST sends
// it): any other method is 405, a form that does not parse within maxBody
// 400, as the tenant's error page; false then. r.Form holds the parameters.
func (t *Tenant) hostedForm(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		t.pageError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		t.pageError(w, http.StatusBadRequest, "invalid_request", "malformed request")
		return false
	}
	return true
}

func (t *Tenant) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q, ok := t.hostedQuery(w, r, http.MethodGet, http.MethodPost)
	if !ok {
		return
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		t.pageError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: client_id")
		return
	}
	now := t.cfg.Now()
	if ru := q.Get("request_uri"); ru != "" {
		t.mu.Lock()
		par, ok := t.pars[ru]
		if ok {
			delete(t.pars, ru) // single use, even when it turns out to be expired
		}
		t.mu.Unlock()
		if !ok || par.clientID != clientID || now.After(par.expires) {
			t.pageError(w, http.StatusBadRequest, "invalid_request", "Invalid request_uri")
			return
		}
		// Auth0 takes the pushed parameters; client_id and request_uri come from the query.
		q = par.params
		q.Set("client_id", clientID)
	}
	t.mu.Lock()
	app, ok := t.apps[clientID]
	t.mu.Unlock()
	if !ok {
		t.pageError(w, http.StatusBadRequest, "unauthorized_client", "Unknown client: "+clientID)
		return
	}
	redirectURI := q.Get("redirect_uri")
	if redirectURI == "" && len(app.CallbackURLs) > 0 {
		redirectURI = app.CallbackURLs[0]
	}
	if !slices.Contains(app.CallbackURLs, redirectURI) {
		t.pageError(w, http.StatusBadRequest, "unauthorized_client",
			"Callback URL mismatch. "+redirectURI+" is not in the list of allowed callback URLs")
		return
	}
	req := authRequest{
		clientID:     clientID,
		redirectURI:  redirectURI,
		redirectSent: q.Get("redirect_uri") != "",
		state:        q.Get("state"),
		maxAge:       -1,
	}
	fail := func(code, desc string) { t.redirectError(w, r, req, code, desc) }
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		fail("invalid_request", "response_mode "+rm+" is not supported by auth0test")
		return
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		fail("invalid_request", "Missing required parameter: response_type")
		return
	default:
		fail("unsupported_response_type", "Unsupported response type: "+rt)
		return
	}
	if !slices.Contains(app.GrantTypes, GrantAuthorizationCode) {
		fail("unauthorized_client", "Grant type 'authorization_code' not allowed for the client.")
		return
	}
	req.scopes = strings.Fields(q.Get("scope"))
	req.nonce = q.Get("nonce")
	req.codeChallenge = q.Get("code_challenge")
	req.codeChallengeMethod = q.Get("code_challenge_method")
	if req.codeChallenge != "" {
		if req.codeChallengeMethod == "" {
			req.codeChallengeMethod = "plain"
		}
		if req.codeChallengeMethod != "S256" && req.codeChallengeMethod != "plain" {
			fail("invalid_request", "Unsupported code_challenge_method: "+req.codeChallengeMethod)
			return
		}
		if len(req.codeChallenge) < 43 || len(req.codeChallenge) > 128 {
			fail("invalid_request", "code_challenge must be between 43 and 128 characters")
			return
		}
	} else if req.codeChallengeMethod != "" {
		fail("invalid_request", "Missing required parameter: code_challenge")
		return
	} else if app.TokenEndpointAuthMethod == "none" {
		fail("invalid_request", "Parameter 'code_challenge' is required for public clients")
		return
	}
	req.audience = q.Get("audience")
	if req.audience != "" {
		t.mu.Lock()
		_, ok := t.apis[req.audience]
		t.mu.Unlock()
		if !ok {
			fail("access_denied", "Service not found: "+req.audience)
			return
		}
	}
	req.connection = q.Get("connection")
	if req.connection != "" {
		t.mu.Lock()
		_, ok := t.conns[req.connection]
		t.mu.Unlock()
		if !ok {
			fail("invalid_request", "the connection was not found")
			return
		}
	}
	org, desc := t.authorizeOrg(app, q.Get("organization"), q.Get("invitation"))
	if desc != "" {
		fail("invalid_request", desc)
		return
	}
	req.org, req.invitation = org, q.Get("invitation")
	req.prompt = strings.Fields(q.Get("prompt"))
	for _, p := range req.prompt {
		switch p {
		case "none", "login", "consent", "select_account":
		default:
			fail("invalid_request", "Unsupported prompt: "+p)
			return
		}
	}
	if req.hasPrompt("none") && len(req.prompt) > 1 {
		fail("invalid_request", "prompt=none must not be combined with other values")
		return
	}
	if ma := q.Get("max_age"); ma != "" {
		n, err := strconv.Atoi(ma)
		if err != nil || n < 0 {
			fail("invalid_request", "max_age must be a non-negative integer")
			return
		}
		req.maxAge = n
	}
	req.loginHint = q.Get("login_hint")
	req.acrValues = strings.Fields(q.Get("acr_values"))

	tx := &loginTx{id: randomToken(24), req: req, created: now}
	// The tenant's SSO session, if the browser has one that is usable here.
	sess := t.sessionFor(r, now)
	// max_age=0 is prompt=login (OIDC Core 3.1.2.1), even on a clock that has not moved.
	needLogin := sess == nil || req.hasPrompt("login") || req.maxAge == 0 ||
		(req.maxAge > 0 && now.Sub(sess.authTime) > time.Duration(req.maxAge)*time.Second) ||
		(req.connection != "" && sess.connection != req.connection)
	t.cfg.Logger.Debug("auth0test: authorize", "client_id", clientID, "sso", sess != nil, "login_required", needLogin,
		"prompt", req.prompt, "max_age", req.maxAge, "acr_values", req.acrValues)
	if needLogin {
		if req.hasPrompt("none") {
			fail("login_required", "Login required")
			return
		}
		t.mu.Lock()
		t.txs[tx.id] = tx
		t.mu.Unlock()
		http.Redirect(w, r, t.firstFactorURL(tx), http.StatusFound)
		return
	}
	tx.userID = sess.userID
	tx.connection = sess.connection
	tx.authTime = sess.authTime
	tx.methods = append([]string(nil), sess.methods...)
	tx.mfaTime = sess.mfaTime
	tx.sessionKey = sess.key
	tx.sid = sess.sid
	t.continueLogin(w, r, tx)
}

// firstFactorURL is the hosted page for the transaction's connection.
func (t *Tenant) firstFactorURL(tx *loginTx) string {
	conn := tx.req.connection
	t.mu.Lock()
	c, ok := t.conns[conn]
	t.mu.Unlock()
	if ok && c.Strategy != "auth0" {
		return "/u/social?" + url.Values{"state": {tx.id}, "connection": {conn}}.Encode()
	}
	return "/u/login?" + url.Values{"state": {tx.id}}.Encode()
}

// sessionFor returns a copy of the browser's live SSO session, or nil.
func (t *Tenant) sessionFor(r *http.Request, now time.Time) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.sessions[c.Value]
	if !ok {
		return nil
	}
	if now.After(s.created.Add(t.cfg.SessionLifetime)) || now.After(s.lastUsed.Add(t.cfg.SessionIdleLifetime)) {
		delete(t.sessions, c.Value)
		return nil
	}
	cp := *s
	cp.methods = append([]string(nil), s.methods...)
	cp.clients = slices.Clone(s.clients)
	return &cp
}

// mfaRequested reports whether the tenant's step-up rules demand MFA for req:
// acr_values asks for the MFA class (and the tenant honours it), or a scope of the
// audience is one of its MFAScopes.
func (t *Tenant) mfaRequested(acrValues, scopes []string, audience string) bool {
	if t.acrMFARequested(acrValues) {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if api, ok := t.apis[audience]; ok {
		for _, s := range scopes {
			if slices.Contains(api.MFAScopes, s) {
				return true
			}
		}
	}
	return false
}

func (t *Tenant) acrMFARequested(acrValues []string) bool {
	return !t.cfg.IgnoreACRValues && slices.Contains(acrValues, MFAACR) &&
		(t.cfg.ACRValuesSupported == nil || slices.Contains(t.cfg.ACRValuesSupported, MFAACR))
}

// continueLogin runs once the first factor is known: the Action, then the OTP
// page if MFA is required and not yet performed, then the redirect with a code.
func (t *Tenant) continueLogin(w http.ResponseWriter, r *http.Request, tx *loginTx) {
	req := tx.req
	fail := func(code, desc string) {
		t.mu.Lock()
		delete(t.txs, tx.id)
		t.mu.Unlock()
		t.redirectError(w, r, req, code, desc)
	}
	user, ok := t.userByID(tx.userID)
	if !ok {
		fail("access_denied", "user does not exist")
		return
	}
	if user.Blocked {
		fail("unauthorized", "user is blocked")
		return
	}
	if desc := t.joinOrg(req.org, req.invitation, user); desc != "" {
		fail("access_denied", desc)
		return
	}
	api := t.runAction(ActionEvent{
		Organization: req.org,
		User:         user, ClientID: req.clientID, Connection: tx.connection, Protocol: ProtocolOIDC,
		ACRValues: req.acrValues, Scopes: req.scopes, Audience: req.audience,
		AuthenticationMethods: tx.methods, Authentication: authMethods(tx.methods, tx.authTime, tx.mfaTime),
		Silent: !tx.fresh,
	})
	if api.denied {
		fail("access_denied", api.reason)
		return
	}
	tx.action = api
	ruleMFA := t.mfaRequested(req.acrValues, req.scopes, req.audience)
	needMFA := api.requireMFA || ruleMFA
	// A session's earlier MFA counts only where the browser may be remembered:
	// the Action's own api.multifactor.enable never remembers it (RequireMFA is
	// allowRememberBrowser:false), the built-in step-up rule only with
	// Config.AllowRememberBrowser.
	remembered := slices.Contains(tx.methods, "mfa") &&
		(api.rememberBrowser || (!api.requireMFA && t.cfg.AllowRememberBrowser)) &&
		t.rememberedMFA(user.ID, tx.mfaTime)
	t.cfg.Logger.Debug("auth0test: first factor done", "user", user.ID, "fresh", tx.fresh,
		"mfa_required", needMFA, "mfa_in_session", slices.Contains(tx.methods, "mfa"), "remembered", remembered,
		"action_requires_mfa", api.requireMFA)
	if needMFA && !remembered {
		if req.hasPrompt("none") {
			fail("interaction_required", "Multifactor authentication required")
			return
		}
		if user.TOTPSecret == "" {
			fail("access_denied", "Multifactor authentication required, but the user has no enrolled factor (auth0test does not emulate enrollment)")
			return
		}
		tx.awaitingOTP = true
		t.mu.Lock()
		t.txs[tx.id] = tx
		t.mu.Unlock()
		http.Redirect(w, r, "/u/mfa-otp-challenge?"+url.Values{"state": {tx.id}}.Encode(), http.StatusFound)
		return
	}
	t.finishLogin(w, r, tx)
}

// finishLogin establishes or refreshes the SSO session and redirects with a
// code, after the consent page when the application needs consent.
func (t *Tenant) finishLogin(w http.ResponseWriter, r *http.Request, tx *loginTx) {
	now := t.cfg.Now()
	req := tx.req
	if !tx.consented && t.needsConsent(tx) {
		if req.hasPrompt("none") {
			t.mu.Lock()
			delete(t.txs, tx.id)
			t.mu.Unlock()
			t.redirectError(w, r, req, "consent_required", "Consent required")
			return
		}
		tx.awaitingConsent = true
		t.mu.Lock()
		t.txs[tx.id] = tx
		t.mu.Unlock()
		http.Redirect(w, r, "/u/consent?"+url.Values{"state": {tx.id}}.Encode(), http.StatusFound)
		return
	}
	t.mu.Lock()
	delete(t.txs, tx.id)
	var sess *session
	if !tx.fresh {
		sess = t.sessions[tx.sessionKey]
	}
	if sess == nil {
		if c, err := r.Cookie(sessionCookie); err == nil {
			delete(t.sessions, c.Value) // a new login replaces the browser's session
		}
		sess = &session{key: randomToken(32), sid: randomToken(16), created: now}
		t.sessions[sess.key] = sess
	}
	sess.userID = tx.userID
	sess.connection = tx.connection
	sess.authTime = tx.authTime
	sess.methods = append([]string(nil), tx.methods...)
	sess.mfaTime = tx.mfaTime
	sess.lastUsed = now
	if !slices.Contains(sess.clients, req.clientID) {
		sess.clients = append(sess.clients, req.clientID)
	}
	key, sid := sess.key, sess.sid

	var acr string
	var amr []string
	mfaDone := slices.Contains(tx.methods, "mfa")
	if mfaDone && t.acrMFARequested(req.acrValues) {
		acr = MFAACR
	}
	if mfaDone && !req.hasPrompt("none") {
		amr = []string{"mfa"}
	}
	code := randomToken(24)
	ac := &authCode{
		clientID: req.clientID, redirectURI: req.redirectURI, redirectSent: req.redirectSent, challenge: req.codeChallenge,
		method: req.codeChallengeMethod, userID: tx.userID, scopes: req.scopes, audience: req.audience,
		nonce: req.nonce, sid: sid, acr: acr, amr: amr, org: req.org,
		methods: authMethods(tx.methods, tx.authTime, tx.mfaTime),
		expires: now.Add(codeLifetime),
	}
	if req.maxAge >= 0 || req.hasPrompt("login") || t.cfg.AlwaysIncludeAuthTime {
		ac.authTime = tx.authTime
	}
	if tx.action != nil {
		ac.idClaims, ac.atClaims, ac.rtMeta = tx.action.idClaims, tx.action.atClaims, tx.action.rtMeta
	}
	t.codes[code] = ac
	t.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: key, Path: "/", HttpOnly: true, Secure: true,
		// MaxAge, not Expires: user agents compare Expires with the real clock, and
		// the tenant's may be fake. The tenant enforces the lifetime itself.
		SameSite: http.SameSiteNoneMode, MaxAge: int(t.cfg.SessionLifetime / time.Second),
	})
	t.redirectCallback(w, r, req, url.Values{"code": {code}})
}

func (t *Tenant) redirectError(w http.ResponseWriter, r *http.Request, req authRequest, code, desc string) {
	t.redirectCallback(w, r, req, url.Values{"error": {code}, "error_description": {desc}})
}

func (t *Tenant) redirectCallback(w http.ResponseWriter, r *http.Request, req authRequest, params url.Values) {
	u, err := url.Parse(req.redirectURI)
	if err != nil {
		t.pageError(w, http.StatusBadRequest, "invalid_request", "invalid redirect_uri")
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if req.state != "" {
		q.Set("state", req.state)
	}
	if t.cfg.IssuerInAuthorizationResponse {
		q.Set("iss", t.Issuer())
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// txFromForm finds the transaction named by the request's state.
func (t *Tenant) txFromRequest(w http.ResponseWriter, r *http.Request) (*loginTx, bool) {
	if !t.hostedForm(w, r) {
		return nil, false
	}
	state := r.Form.Get("state")
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	tx, ok := t.txs[state]
	if ok && now.After(tx.created.Add(loginTxTimeout)) {
		delete(t.txs, state)
		ok = false
	}
	if !ok {
		t.pageError(w, http.StatusBadRequest, "invalid_request", "Invalid or expired state: start the login again")
		return nil, false
	}
	// A copy: the stored transaction only changes when a step succeeds.
	cp := *tx
	cp.methods = append([]string(nil), tx.methods...)
	return &cp, true
}

func (t *Tenant) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	tx, ok := t.txFromRequest(w, r)
	if !ok {
		return
	}
	if tx.awaitingOTP || tx.awaitingConsent || tx.awaitingRecoveryAck {
		t.pageError(w, http.StatusBadRequest, "invalid_request", "Login already performed; continue with the next step")
		return
	}
	data := pageData{Page: "login", Title: "Welcome", App: t.appName(tx.req.clientID), State: tx.id,
		Email: tx.req.loginHint, Connection: DatabaseConnection, Socials: t.socialLinks(tx)}
	if c := tx.req.connection; c != "" {
		data.Connection = c
	}
	if r.Method == http.MethodGet {
		renderPage(w, http.StatusOK, data)
		return
	}
	email := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	data.Email = email
	now := t.cfg.Now()
	t.mu.Lock()
	u := t.userByEmailLocked(email, "auth0")
	var userID, conn string
	okPwd := false
	if u != nil && (tx.req.connection == "" || tx.req.connection == u.Connection) {
		okPwd = subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1 && u.Password != ""
		userID, conn = u.ID, u.Connection
	}
	t.mu.Unlock()
	if !okPwd {
		data.Error, data.Message = "invalid_user_password", "Wrong email or password."
		renderPage(w, http.StatusBadRequest, data)
		return
	}
	tx.userID, tx.connection, tx.authTime = userID, conn, now
	tx.methods = []string{"pwd"}
	tx.fresh = true
	t.continueLogin(w, r, tx)
}

func (t *Tenant) socialLinks(tx *loginTx) []link {
	if tx.req.connection != "" {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []link
	for _, c := range t.cfg.Connections {
		if c.Strategy != "auth0" {
			out = append(out, link{
				Href: "/u/social?" + url.Values{"state": {tx.id}, "connection": {c.Name}}.Encode(),
				Text: "Continue with " + c.DisplayName,
			})
		}
	}
	return out
}

func (t *Tenant) handleSocialPage(w http.ResponseWriter, r *http.Request) {
	tx, ok := t.txFromRequest(w, r)
	if !ok {
		return
	}
	conn := r.Form.Get("connection")
	t.mu.Lock()
	c, known := t.conns[conn]
	var accounts []option
	for _, u := range t.users {
		if u.Connection == conn {
			accounts = append(accounts, option{Value: u.Email, Text: u.Name + " <" + u.Email + ">"})
		}
	}
	t.mu.Unlock()
	if !known || c.Strategy == "auth0" || tx.awaitingOTP || tx.awaitingConsent || tx.awaitingRecoveryAck || (tx.req.connection != "" && tx.req.connection != conn) {
		t.pageError(w, http.StatusBadRequest, "invalid_request", "the connection was not found")
		return
	}
	data := pageData{Page: "social", Title: "Sign in with " + c.DisplayName, App: t.appName(tx.req.clientID),
		State: tx.id, Connection: conn, ConnName: c.DisplayName, Accounts: accounts}
	if r.Method == http.MethodGet {
		renderPage(w, http.StatusOK, data)
		return
	}
	email := r.PostForm.Get("email")
	t.mu.Lock()
	u := t.userByEmailLocked(email, conn)
	var userID string
	if u != nil {
		userID = u.ID
	}
	t.mu.Unlock()
	if u == nil {
		data.Error, data.Message = "invalid_user", "This account does not exist on "+conn+"."
		renderPage(w, http.StatusBadRequest, data)
		return
	}
	tx.userID, tx.connection, tx.authTime = userID, conn, t.cfg.Now()
	tx.methods = []string{"federated"}
	tx.fresh = true
	t.continueLogin(w, r, tx)
}

func (t *Tenant) handleOTPPage(w http.ResponseWriter, r *http.Request) {
	tx, ok := t.txFromRequest(w, r)
	if !ok {
		return
	}
	if !tx.awaitingOTP || tx.awaitingConsent || tx.awaitingRecoveryAck {
		t.pageError(w, http.StatusBadRequest, "invalid_request", "No second factor is pending for this login")
		return
	}
	user, _ := t.userByID(tx.userID)
	data := pageData{Page: "otp", Title: "Verify your identity", App: t.appName(tx.req.clientID), State: tx.id,
		Email: user.Email}
	if r.Method == http.MethodGet {
		renderPage(w, http.StatusOK, data)
		return
	}
	code := strings.TrimSpace(r.PostForm.Get("code"))
	t.mu.Lock()
	u := t.userByIDLocked(tx.userID)
	var secret string
	if u != nil {
		secret = u.TOTPSecret
	}
	t.mu.Unlock()
	now := t.cfg.Now()
	if secret == "" || !checkTOTP(secret, code, now) {
		data.Error, data.Message = "invalid_code", "The code you entered is invalid"
		renderPage(w, http.StatusBadRequest, data)
		return
	}
	t.mu.Lock()
	t.otpUsedLocked(tx.userID, now)
	t.mu.Unlock()
	tx.awaitingOTP = false
	if !slices.Contains(tx.methods, "mfa") {
		tx.methods = append(tx.methods, "mfa")
	}
	tx.mfaTime = now
	t.finishLogin(w, r, tx)
}

// handleRecoveryCodePage is the "use a recovery code" alternative of the OTP
// page: a valid code completes MFA and is replaced by a new one, shown once and
// acknowledged (Universal Login's flow); the old code no longer works.
func (t *Tenant) handleRecoveryCodePage(w http.ResponseWriter, r *http.Request) {
	tx, ok := t.txFromRequest(w, r)
	if !ok {
		return
	}
	if tx.awaitingRecoveryAck && r.Method == http.MethodPost && r.PostForm.Get("action") == "continue" {
		tx.awaitingRecoveryAck = false
		t.finishLogin(w, r, tx)
		return
	}
	if !tx.awaitingOTP || tx.awaitingConsent || tx.awaitingRecoveryAck {
		t.pageError(w, http.StatusBadRequest, "invalid_request", "No second factor is pending for this login")
		return
	}
	data := pageData{Page: "recovery", Title: "Verify your identity", App: t.appName(tx.req.clientID), State: tx.id}
	if r.Method == http.MethodGet {
		renderPage(w, http.StatusOK, data)
		return
	}
	code := strings.ToUpper(strings.TrimSpace(r.PostForm.Get("recovery_code")))
	now := t.cfg.Now()
	next := newRecoveryCode()
	t.mu.Lock()
	u := t.userByIDLocked(tx.userID)
	valid := u != nil && u.RecoveryCode != "" && len(code) <= 64 &&
		subtle.ConstantTimeCompare([]byte(u.RecoveryCode), []byte(code)) == 1
	if valid {
		t.setRecoveryCodeLocked(u, next, now)
	}
	t.mu.Unlock()
	if !valid {
		data.Error, data.Message = "invalid_code", "The recovery code you entered is invalid"
		renderPage(w, http.StatusBadRequest, data)
		return
	}
	tx.awaitingOTP, tx.awaitingRecoveryAck = false, true
	if !slices.Contains(tx.methods, "mfa") {
		tx.methods = append(tx.methods, "mfa")
	}
	tx.mfaTime = now
	t.mu.Lock()
	t.txs[tx.id] = tx
	t.mu.Unlock()
	renderPage(w, http.StatusOK, pageData{Page: "recovery-new", Title: "Almost there", App: data.App, State: tx.id, RecoveryCode: next})
}

// appName is the application's name for the hosted pages.
func (t *Tenant) appName(clientID string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a, ok := t.apps[clientID]; ok {
		return a.Name
	}
	return ""
}

// userByEmailLocked finds a user by email; strategy "auth0" limits the search to
// database connections, another non-empty value to that connection.
func (t *Tenant) userByEmailLocked(email, connOrStrategy string) *User {
	for _, u := range t.users {
		if !strings.EqualFold(u.Email, email) {
			continue
		}
		switch {
		case connOrStrategy == "":
		case connOrStrategy == "auth0":
			if t.conns[u.Connection].Strategy != "auth0" {
				continue
			}
		case u.Connection != connOrStrategy:
			continue
		}
		return u
	}
	return nil
}

// userByID returns a copy of the user with that id, taking t.mu.
func (t *Tenant) userByID(id string) (User, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if u := t.userByIDLocked(id); u != nil {
		return *u, true
	}
	return User{}, false
}

func (t *Tenant) userByIDLocked(id string) *User {
	for _, u := range t.users {
		if u.ID == id {
			return u
		}
	}
	return nil
}

// User returns the tenant's user with that email (any connection).
func (t *Tenant) User(email string) (User, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.userByEmailLocked(email, "")
	if u == nil {
		return User{}, false
	}
	return *u, true
}
