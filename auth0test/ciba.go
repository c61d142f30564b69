package auth0test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	cibaDefaultExpiry = 300 * time.Second
	cibaMaxExpiry     = 259200
	cibaInterval      = 5 * time.Second
)

var bindingMessageRE = regexp.MustCompile(`^[A-Za-z0-9 +\-_.,:#]{1,64}$`)

type cibaRequest struct {
	id       string
	clientID string
	userID   string
	binding  string
	scopes   []string
	audience string
	created  time.Time
	expires  time.Time
	interval time.Duration
	lastPoll time.Time
	status   string // pending, approved, denied
	decided  time.Time
}

// CIBARequest is a pending backchannel authentication request.
type CIBARequest struct {
	AuthReqID      string
	ClientID       string
	UserID         string
	BindingMessage string
	Scope          string
	Audience       string
	ExpiresAt      time.Time
}

func (t *Tenant) handleBCAuthorize(w http.ResponseWriter, r *http.Request) {
	if !allowPOST(w, r) {
		return
	}
	form, app, ok := t.readClientForm(w, r)
	if !ok {
		return
	}
	if app.TokenEndpointAuthMethod == "none" || !slices.Contains(app.GrantTypes, GrantCIBA) {
		writeError(w, http.StatusForbidden, "unauthorized_client", "Grant type '"+GrantCIBA+"' not allowed for the client.")
		return
	}
	scopes := strings.Fields(form.Get("scope"))
	if !slices.Contains(scopes, "openid") {
		invalidRequest("openid scope must be requested").write(w)
		return
	}
	bm := form.Get("binding_message")
	if bm == "" {
		invalidRequest("binding_message is required").write(w)
		return
	}
	if !bindingMessageRE.MatchString(bm) {
		invalidRequest("binding_message must be at most 64 characters among A-Z a-z 0-9 + - _ . , : # and space").write(w)
		return
	}
	hint := form.Get("login_hint")
	if hint == "" {
		invalidRequest("login_hint is required").write(w)
		return
	}
	var lh struct {
		Format string `json:"format"`
		Iss    string `json:"iss"`
		Sub    string `json:"sub"`
	}
	if err := json.Unmarshal([]byte(hint), &lh); err != nil || lh.Format != "iss_sub" {
		invalidRequest("login_hint must be a JSON object with format iss_sub").write(w)
		return
	}
	t.mu.Lock()
	u := t.userByIDLocked(lh.Sub)
	t.mu.Unlock()
	if lh.Iss != t.Issuer() || u == nil {
		writeError(w, http.StatusBadRequest, "unknown_user_id", "User ID is malformed or unknown")
		return
	}
	audience := form.Get("audience")
	if audience != "" {
		t.mu.Lock()
		_, ok := t.apis[audience]
		t.mu.Unlock()
		if !ok {
			invalidRequest("Service not found: " + audience).write(w)
			return
		}
	}
	expiry := cibaDefaultExpiry
	if re := form.Get("requested_expiry"); re != "" {
		n, err := strconv.Atoi(re)
		if err != nil || n < 1 || n > cibaMaxExpiry {
			invalidRequest(fmt.Sprintf("requested_expiry must be an integer between 1 and %d", cibaMaxExpiry)).write(w)
			return
		}
		expiry = time.Duration(n) * time.Second
	}
	now := t.cfg.Now()
	req := &cibaRequest{
		id: randomToken(32), clientID: app.ClientID, userID: u.ID, binding: bm, scopes: scopes,
		audience: audience, created: now, expires: now.Add(expiry), interval: cibaInterval, status: "pending",
	}
	t.mu.Lock()
	t.ciba[req.id] = req
	t.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"auth_req_id": req.id, "expires_in": int64(expiry / time.Second), "interval": int64(cibaInterval / time.Second),
	})
}

func (t *Tenant) grantCIBA(w http.ResponseWriter, app *Application, form url.Values) (map[string]any, *oauthError) {
	id := form.Get("auth_req_id")
	if id == "" {
		return nil, invalidRequest("Missing required parameter: auth_req_id")
	}
	now := t.cfg.Now()
	t.mu.Lock()
	req, ok := t.ciba[id]
	if !ok || req.clientID != app.ClientID {
		t.mu.Unlock()
		return nil, newErr(http.StatusBadRequest, "invalid_grant", "Invalid or expired auth_req_id")
	}
	if now.After(req.expires) {
		delete(t.ciba, id)
		t.mu.Unlock()
		return nil, newErr(http.StatusBadRequest, "access_denied", "The end-user denied the authorization request or it has been expired")
	}
	// Polling faster than the interval: slow_down, and the interval grows by 5 s
	// (RFC 8628 3.5). The first poll is never too early.
	if !req.lastPoll.IsZero() && now.Before(req.lastPoll.Add(req.interval)) {
		req.interval += cibaInterval
		req.lastPoll = now
		secs := int64(req.interval / time.Second)
		t.mu.Unlock()
		e := newErr(http.StatusBadRequest, "slow_down", fmt.Sprintf("You are polling faster than allowed. Try again in %d seconds.", secs))
		e.header = map[string]string{"Retry-After": strconv.FormatInt(secs, 10)}
		e.extra = map[string]any{"interval": secs}
		return nil, e
	}
	req.lastPoll = now
	switch req.status {
	case "pending":
		t.mu.Unlock()
		return nil, newErr(http.StatusBadRequest, "authorization_pending", "The end-user authorization is pending")
	case "denied":
		delete(t.ciba, id)
		t.mu.Unlock()
		return nil, newErr(http.StatusBadRequest, "access_denied", "The end-user denied the authorization request or it has been expired")
	}
	delete(t.ciba, id) // single use
	u := t.userByIDLocked(req.userID)
	var user User
	if u != nil {
		user = *u
	}
	decided := req.decided
	t.mu.Unlock()
	if u == nil {
		return nil, newErr(http.StatusBadRequest, "access_denied", "The end-user denied the authorization request or it has been expired")
	}
	api := t.runAction(ActionEvent{User: user, ClientID: app.ClientID, Connection: user.Connection,
		Protocol: ProtocolCIBA, Scopes: req.scopes, Audience: req.audience})
	if api.denied {
		return nil, newErr(http.StatusBadRequest, "access_denied", api.reason)
	}
	// auth0test's choice: the approval is the authentication (auth_time), and CIBA
	// ID tokens carry no acr or amr.
	resp, _ := t.issueTokens(tokenRequest{app: app, user: &user, scopes: req.scopes, audience: req.audience,
		authTime: decided, idClaims: api.idClaims, atClaims: api.atClaims, rtMeta: api.rtMeta})
	return resp, nil
}

// PendingCIBA lists the CIBA requests waiting for the user's decision, oldest first.
func (t *Tenant) PendingCIBA() []CIBARequest {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []CIBARequest
	for _, r := range t.ciba {
		if r.status == "pending" && !now.After(r.expires) {
			out = append(out, CIBARequest{AuthReqID: r.id, ClientID: r.clientID, UserID: r.userID,
				BindingMessage: r.binding, Scope: strings.Join(r.scopes, " "), Audience: r.audience, ExpiresAt: r.expires})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ExpiresAt.Before(out[j].ExpiresAt) })
	return out
}

// ApproveCIBA approves a pending request, as the user would on their phone.
// It returns ErrNotPending if the request is unknown, expired or already decided.
func (t *Tenant) ApproveCIBA(authReqID string) error { return t.decideCIBA(authReqID, "approved") }

// DenyCIBA rejects a pending request.
func (t *Tenant) DenyCIBA(authReqID string) error { return t.decideCIBA(authReqID, "denied") }

func (t *Tenant) decideCIBA(id, status string) error {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.ciba[id]
	if !ok || r.status != "pending" || now.After(r.expires) {
		return fmt.Errorf("%w: CIBA request %q", ErrNotPending, id)
	}
	r.status, r.decided = status, now
	return nil
}

// handleCIBAPage is a page for people (the demo links to it): the pending CIBA
// requests and MFA push challenges with Approve and Deny buttons. auth0test's own
// addition, not Auth0's.
func (t *Tenant) handleCIBAPage(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		renderPage(w, http.StatusOK, pageData{Page: "ciba", Title: "Pending backchannel requests",
			CIBA: t.PendingCIBA(), OOB: t.PendingOOB()})
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			t.pageError(w, http.StatusBadRequest, "invalid_request", "malformed form")
			return
		}
		id := r.PostForm.Get("auth_req_id")
		oob := r.PostForm.Get("oob_code")
		var err error
		switch d := r.PostForm.Get("decision"); {
		case oob != "" && d == "approve":
			err = t.ApproveOOB(oob)
		case oob != "" && d == "deny":
			err = t.DenyOOB(oob)
		case d == "approve":
			err = t.ApproveCIBA(id)
		case d == "deny":
			err = t.DenyCIBA(id)
		default:
			t.pageError(w, http.StatusBadRequest, "invalid_request", "decision must be approve or deny")
			return
		}
		if err != nil {
			t.pageError(w, http.StatusNotFound, "invalid_request", "No such pending request")
			return
		}
		http.Redirect(w, r, "/auth0test/ciba", http.StatusSeeOther)
	default:
		t.pageError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed")
	}
}

// cibaKeep is how long a decided or expired CIBA request is kept after its
// expiry, to answer its polls (access_denied once, then invalid_grant).
const cibaKeep = time.Hour
