package auth0test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Management API scopes auth0test checks (Auth0's names). ManagementScopes
// lists them all, for an Application.ManagementScopes that grants everything
// the emulated subset needs.
const (
	ScopeReadUsers                   = "read:users"
	ScopeUpdateUsers                 = "update:users"
	ScopeReadAuthenticationMethods   = "read:authentication_methods"
	ScopeDeleteAuthenticationMethods = "delete:authentication_methods"
	ScopeReadGuardianEnrollments     = "read:guardian_enrollments"
	ScopeDeleteGuardianEnrollments   = "delete:guardian_enrollments"
	ScopeCreateGuardianTickets       = "create:guardian_enrollment_tickets"
)

// ManagementScopes are every Management API scope the emulated subset checks.
var ManagementScopes = []string{ScopeReadUsers, ScopeUpdateUsers, ScopeReadAuthenticationMethods,
	ScopeDeleteAuthenticationMethods, ScopeReadGuardianEnrollments, ScopeDeleteGuardianEnrollments,
	ScopeCreateGuardianTickets}

// managementAPIScopes are the scopes the tenant's Management API defines
// (what a client grant may list); requesting others is refused.
var managementAPIScopes = append(slices.Clone(ManagementScopes), "create:users", "delete:users",
	"update:users_app_metadata", "update:authentication_methods", "create:authentication_methods")

const (
	managementTokenLifetime = 86400 * time.Second
	ticketLifetime          = 24 * time.Hour
	maxPathSegment          = 512
	// maxMetadata bounds each of a user's metadata objects (serialized), so
	// that repeated PATCHes cannot grow a long-running tenant without bound.
	// Auth0's own limits are larger; tests do not need them.
	maxMetadata = 16 << 10
)

// managementAudience is the Management API's audience, https://{domain}/api/v2/.
func (t *Tenant) managementAudience() string { return t.Issuer() + "api/v2/" }

// factorState is what the tenant knows of a user's factors beyond User: the
// enrollment generation (ids change when a factor is enrolled again) and dates.
type factorState struct {
	totpGen, rcGen         int
	totpCreated, rcCreated time.Time
	totpLastAuth           time.Time // zero: never used
	// rememberedBefore: an MFA performed at or before this time no longer
	// counts for a remembered browser (invalidate-remember-browser).
	rememberedBefore time.Time
}

// factorsLocked returns the user's factor state, made on first use (a
// configured factor dates from the tenant's start).
func (t *Tenant) factorsLocked(userID string) *factorState {
	fs, ok := t.factors[userID]
	if !ok {
		fs = &factorState{totpCreated: t.started, rcCreated: t.started}
		t.factors[userID] = fs
	}
	return fs
}

// factorIDLocked is the id of the user's current factor of a kind ("totp",
// "push", "recovery-code"); a new enrollment gets a new id.
func (t *Tenant) factorIDLocked(kind, userID string) string {
	fs := t.factorsLocked(userID)
	gen := fs.totpGen
	if kind == "recovery-code" {
		gen = fs.rcGen
	}
	sum := sha256.Sum256([]byte(kind + "\x00" + userID + "\x00" + strconv.Itoa(gen)))
	return kind + "|dev_" + hex.EncodeToString(sum[:8])
}

// setTOTPLocked enrolls (secret != "") or removes the user's OTP factor.
func (t *Tenant) setTOTPLocked(u *User, secret string, now time.Time) {
	fs := t.factorsLocked(u.ID)
	if secret != "" {
		fs.totpGen++
		fs.totpCreated, fs.totpLastAuth = now, time.Time{}
	}
	u.TOTPSecret = secret
}

// setRecoveryCodeLocked replaces (or, with "", removes) the user's recovery code.
func (t *Tenant) setRecoveryCodeLocked(u *User, code string, now time.Time) {
	fs := t.factorsLocked(u.ID)
	if code != "" {
		fs.rcGen++
		fs.rcCreated = now
	}
	u.RecoveryCode = code
}

// otpUsedLocked records that the user's OTP factor was just accepted.
func (t *Tenant) otpUsedLocked(userID string, now time.Time) {
	t.factorsLocked(userID).totpLastAuth = now
}

// mgmtError is the Management API's error body.
func mgmtError(w http.ResponseWriter, status int, message, errorCode string) {
	body := map[string]any{"statusCode": status, "error": http.StatusText(status), "message": message}
	if errorCode != "" {
		body["errorCode"] = errorCode
	}
	writeJSON(w, status, body)
}

// ManagementTokens is how many client_credentials requests for the Management
// API audience reached /oauth/token (granted or not), so a test can assert that
// replicas shared one token.
func (t *Tenant) ManagementTokens() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mgmtTokenCalls
}

// managementGrant answers client_credentials for the Management API: the
// application's client grant (Application.ManagementScopes) decides.
func (t *Tenant) managementGrant(app *Application, form url.Values) (map[string]any, *oauthError) {
	t.mu.Lock()
	t.mgmtTokenCalls++
	t.mu.Unlock()
	aud := t.managementAudience()
	if len(app.ManagementScopes) == 0 {
		return nil, newErr(http.StatusForbidden, "access_denied", fmt.Sprintf(
			"Client is not authorized to access %q. You need to create a \"client-grant\" associated to this API.", aud))
	}
	scopes := slices.Clone(app.ManagementScopes)
	if s := form.Get("scope"); s != "" {
		req := strings.Fields(s)
		var missing []string
		for _, x := range req {
			if !slices.Contains(scopes, x) {
				missing = append(missing, x)
			}
		}
		if len(missing) > 0 {
			return nil, newErr(http.StatusForbidden, "access_denied", "Client has not been granted scopes: "+strings.Join(missing, " "))
		}
		scopes = req
	}
	resp, _ := t.issueTokens(tokenRequest{app: app, scopes: scopes, audience: aud, gty: "client-credentials", m2m: true})
	return resp, nil
}

// mgmtAuth checks the Bearer token of a Management API request and its scope.
// It answers the error itself and reports whether the handler may go on.
func (t *Tenant) mgmtAuth(w http.ResponseWriter, r *http.Request, scope string) bool {
	tok := bearer(r)
	if tok == "" {
		mgmtError(w, http.StatusUnauthorized, "Missing authentication", "")
		return false
	}
	if len(tok) > maxBody || strings.Count(tok, ".") != 2 {
		mgmtError(w, http.StatusUnauthorized, "Invalid token", "")
		return false
	}
	header, claims, err := t.verifyJWT(tok, false)
	if err == nil && header["alg"] != "RS256" {
		// HS256 would be signed with an application's own secret.
		err = errBadToken
	}
	// Only client-credentials tokens: Auth0 gives users' tokens for this
	// audience a few self-service scopes only, which auth0test does not emulate.
	if err != nil || !slices.Contains(audiences(claims["aud"]), t.managementAudience()) || claims["gty"] != "client-credentials" {
		mgmtError(w, http.StatusUnauthorized, "Invalid token", "")
		return false
	}
	exp, ok := claims["exp"].(float64)
	if !ok || !t.cfg.Now().Before(time.Unix(int64(exp), 0)) {
		mgmtError(w, http.StatusUnauthorized, "Expired token received for JSON Web Token validation", "")
		return false
	}
	sc, _ := claims["scope"].(string)
	if !slices.Contains(strings.Fields(sc), scope) {
		mgmtError(w, http.StatusForbidden, "Insufficient scope, expected any of: "+scope, "insufficient_scope")
		return false
	}
	return true
}

// mgmtSegments splits the path after /api/v2/ into unescaped segments.
func mgmtSegments(r *http.Request) ([]string, bool) {
	raw := strings.TrimPrefix(r.URL.EscapedPath(), "/api/v2/")
	parts := strings.Split(raw, "/")
	if len(parts) > 8 {
		return nil, false
	}
	for i, p := range parts {
		if len(p) > maxPathSegment {
			return nil, false
		}
		s, err := url.PathUnescape(p)
		if err != nil || s == "" {
			return nil, false
		}
		parts[i] = s
	}
	return parts, true
}

// handleManagement serves the emulated subset of the Management API.
func (t *Tenant) handleManagement(w http.ResponseWriter, r *http.Request) {
	seg, ok := mgmtSegments(r)
	if !ok {
		mgmtError(w, http.StatusNotFound, "Not Found", "")
		return
	}
	m := r.Method
	route := func(method string, pattern ...string) bool {
		if m != method || len(seg) != len(pattern) {
			return false
		}
		for i, p := range pattern {
			if p != "*" && seg[i] != p {
				return false
			}
		}
		return true
	}
	switch {
	case route("GET", "users", "*"):
		t.mgmtGetUser(w, r, seg[1])
	case route("PATCH", "users", "*"):
		t.mgmtPatchUser(w, r, seg[1])
	case route("GET", "users", "*", "authentication-methods"):
		t.mgmtListMethods(w, r, seg[1])
	case route("GET", "users", "*", "authentication-methods", "*"):
		t.mgmtGetMethod(w, r, seg[1], seg[3])
	case route("DELETE", "users", "*", "authentication-methods", "*"):
		t.mgmtDeleteMethod(w, r, seg[1], seg[3], ScopeDeleteAuthenticationMethods)
	case route("GET", "users", "*", "enrollments"):
		t.mgmtListEnrollments(w, r, seg[1])
	case route("POST", "users", "*", "recovery-code-regeneration"):
		t.mgmtRegenerateRecoveryCode(w, r, seg[1])
	case route("POST", "users", "*", "multifactor", "actions", "invalidate-remember-browser"):
		t.mgmtInvalidateRememberBrowser(w, r, seg[1])
	case route("POST", "guardian", "enrollments", "ticket"):
		t.mgmtCreateTicket(w, r)
	case route("GET", "guardian", "enrollments", "*"):
		t.mgmtGetGuardianEnrollment(w, r, seg[2])
	case route("DELETE", "guardian", "enrollments", "*"):
		t.mgmtDeleteGuardianEnrollment(w, r, seg[2])
	default:
		mgmtError(w, http.StatusNotFound, "Not Found", "")
	}
}

func noSuchUser(w http.ResponseWriter) {
	mgmtError(w, http.StatusNotFound, "The user does not exist.", "inexistent_user")
}

// mgmtTime is Auth0's timestamp format.
func mgmtTime(ts time.Time) string { return ts.UTC().Format("2006-01-02T15:04:05.000Z") }

// userJSONLocked is the Management API's user object (the fields auth0test has).
func (t *Tenant) userJSONLocked(u *User) map[string]any {
	conn := t.conns[u.Connection]
	provider, id, _ := strings.Cut(u.ID, "|")
	out := map[string]any{
		"user_id": u.ID, "email": u.Email, "email_verified": true, "name": u.Name, "nickname": nickname(u.Email),
		"created_at": mgmtTime(t.started), "updated_at": mgmtTime(t.updatedAt(u.ID)),
		"identities": []any{map[string]any{"provider": provider, "user_id": id, "connection": u.Connection,
			"isSocial": conn.Strategy != "auth0"}},
		"user_metadata": orEmpty(u.UserMetadata), "app_metadata": orEmpty(u.AppMetadata),
	}
	if u.Blocked {
		out["blocked"] = true
	}
	if u.TOTPSecret != "" {
		out["multifactor"] = []string{"guardian"}
	}
	return out
}

func (t *Tenant) updatedAt(userID string) time.Time {
	if ts, ok := t.userUpdated[userID]; ok {
		return ts
	}
	return t.started
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// mgmtUser serves a call about one user: the token must carry scope
// (mgmtAuth), the user must exist (404 otherwise); serve runs with t.mu held.
func (t *Tenant) mgmtUser(w http.ResponseWriter, r *http.Request, scope, id string, serve func(u *User)) {
	if !t.mgmtAuth(w, r, scope) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.userByIDLocked(id)
	if u == nil {
		noSuchUser(w)
		return
	}
	serve(u)
}

func (t *Tenant) mgmtGetUser(w http.ResponseWriter, r *http.Request, id string) {
	t.mgmtUser(w, r, ScopeReadUsers, id, func(u *User) {
		writeJSON(w, http.StatusOK, t.userJSONLocked(u))
	})
}

// mgmtBody reads a Management API request's body and parses it; either
// failing is a 400 invalid_body with the failure's message.
func mgmtBody[T any](w http.ResponseWriter, r *http.Request, parse func([]byte) (T, error)) (T, bool) {
	body, err := readBody(r)
	if err == nil {
		var v T
		if v, err = parse(body); err == nil {
			return v, true
		}
	}
	mgmtError(w, http.StatusBadRequest, err.Error(), "invalid_body")
	var zero T
	return zero, false
}

// patchableUserFields are the PATCH /api/v2/users/{id} members auth0test applies.
var patchableUserFields = []string{"user_metadata", "app_metadata", "name"}

// parseUserPatch parses a PATCH /api/v2/users/{id} body: a JSON object whose
// members are among patchableUserFields; metadata members are objects or null.
func parseUserPatch(body []byte) (map[string]json.RawMessage, error) {
	var patch map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&patch); err != nil || patch == nil || dec.More() {
		return nil, fmt.Errorf("Payload validation error: 'Expected type object but found type %s'.", jsonKind(body))
	}
	for k, v := range patch {
		if !slices.Contains(patchableUserFields, k) {
			return nil, fmt.Errorf("Payload validation error: 'Additional properties not allowed: %s'.", k)
		}
		switch k {
		case "name":
			var s string
			if json.Unmarshal(v, &s) != nil || s == "" || len(s) > 300 {
				return nil, fmt.Errorf("Payload validation error: 'Expected type string but found another type' on property name.")
			}
		default:
			var obj map[string]any
			if err := json.Unmarshal(v, &obj); err != nil {
				return nil, fmt.Errorf("Payload validation error: 'Expected type object but found another type' on property %s.", k)
			}
		}
	}
	return patch, nil
}

func jsonKind(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "null"
	}
	switch b[0] {
	case '[':
		return "array"
	case '"':
		return "string"
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	}
	return "unknown"
}

// mergeMetadata applies Auth0's metadata merge: top-level members of patch
// replace those of old, null deletes one; a null patch empties the object.
func mergeMetadata(old map[string]any, raw json.RawMessage) map[string]any {
	var patch map[string]any
	_ = json.Unmarshal(raw, &patch)
	if patch == nil {
		return nil
	}
	out := make(map[string]any, len(old)+len(patch))
	for k, v := range old {
		out[k] = v
	}
	for k, v := range patch {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

func (t *Tenant) mgmtPatchUser(w http.ResponseWriter, r *http.Request, id string) {
	if !t.mgmtAuth(w, r, ScopeUpdateUsers) {
		return
	}
	patch, ok := mgmtBody(w, r, parseUserPatch)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.userByIDLocked(id)
	if u == nil {
		noSuchUser(w)
		return
	}
	// New maps, never changed in place: copies of the User handed out earlier
	// (Actions, helpers) keep reading the old ones.
	um, am := u.UserMetadata, u.AppMetadata
	if raw, ok := patch["user_metadata"]; ok {
		um = mergeMetadata(um, raw)
	}
	if raw, ok := patch["app_metadata"]; ok {
		am = mergeMetadata(am, raw)
	}
	if b, _ := json.Marshal(um); len(b) > maxMetadata {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: user_metadata exceeds auth0test's 16 KiB", "invalid_body")
		return
	}
	if b, _ := json.Marshal(am); len(b) > maxMetadata {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: app_metadata exceeds auth0test's 16 KiB", "invalid_body")
		return
	}
	u.UserMetadata, u.AppMetadata = um, am
	if raw, ok := patch["name"]; ok {
		_ = json.Unmarshal(raw, &u.Name)
	}
	t.userUpdated[u.ID] = t.cfg.Now()
	writeJSON(w, http.StatusOK, t.userJSONLocked(u))
}

// methodsLocked is the user's authentication methods in Auth0's shape.
func (t *Tenant) methodsLocked(u *User) []map[string]any {
	fs := t.factorsLocked(u.ID)
	var out []map[string]any
	if u.TOTPSecret != "" {
		m := map[string]any{"id": t.factorIDLocked("totp", u.ID), "type": "totp", "confirmed": true,
			"name": "Authenticator app", "created_at": mgmtTime(fs.totpCreated), "enrolled_at": mgmtTime(fs.totpCreated)}
		if !fs.totpLastAuth.IsZero() {
			m["last_auth_at"] = mgmtTime(fs.totpLastAuth)
		}
		out = append(out, m)
	}
	if u.RecoveryCode != "" {
		out = append(out, map[string]any{"id": t.factorIDLocked("recovery-code", u.ID), "type": "recovery-code",
			"confirmed": true, "created_at": mgmtTime(fs.rcCreated), "enrolled_at": mgmtTime(fs.rcCreated)})
	}
	return out
}

// pageParams reads page, per_page and include_totals (Auth0's pagination).
func pageParams(r *http.Request) (page, perPage int, totals bool, ok bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil || noDuplicates(q) != nil {
		return 0, 0, false, false
	}
	page, perPage = 0, 50
	if s := q.Get("page"); s != "" {
		if page, err = strconv.Atoi(s); err != nil || page < 0 || page > 1000 {
			return 0, 0, false, false
		}
	}
	if s := q.Get("per_page"); s != "" {
		if perPage, err = strconv.Atoi(s); err != nil || perPage < 1 || perPage > 100 {
			return 0, 0, false, false
		}
	}
	if s := q.Get("include_totals"); s != "" {
		if totals, err = strconv.ParseBool(s); err != nil {
			return 0, 0, false, false
		}
	}
	return page, perPage, totals, true
}

func (t *Tenant) mgmtListMethods(w http.ResponseWriter, r *http.Request, id string) {
	if !t.mgmtAuth(w, r, ScopeReadAuthenticationMethods) {
		return
	}
	page, perPage, totals, ok := pageParams(r)
	if !ok {
		mgmtError(w, http.StatusBadRequest, "Query validation error: invalid page, per_page or include_totals", "invalid_query_string")
		return
	}
	t.mu.Lock()
	u := t.userByIDLocked(id)
	var all []map[string]any
	if u != nil {
		all = t.methodsLocked(u)
	}
	t.mu.Unlock()
	if u == nil {
		noSuchUser(w)
		return
	}
	list := []map[string]any{}
	if start := page * perPage; start < len(all) {
		list = all[start:min(len(all), start+perPage)]
	}
	if !totals {
		writeJSON(w, http.StatusOK, list)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"start": page * perPage, "limit": perPage, "total": len(all), "authenticators": list})
}

func (t *Tenant) mgmtGetMethod(w http.ResponseWriter, r *http.Request, id, amid string) {
	t.mgmtUser(w, r, ScopeReadAuthenticationMethods, id, func(u *User) {
		for _, m := range t.methodsLocked(u) {
			if m["id"] == amid {
				writeJSON(w, http.StatusOK, m)
				return
			}
		}
		mgmtError(w, http.StatusNotFound, "Authentication method not found", "inexistent_authentication_method")
	})
}

// deleteFactorLocked removes the user's factor with that id (an authentication
// method, a Guardian enrollment or an MFA API authenticator id) and reports
// whether there was one. OTP and its push pairing are one enrollment.
func (t *Tenant) deleteFactorLocked(u *User, id string) bool {
	switch {
	case u.TOTPSecret != "" && (id == t.factorIDLocked("totp", u.ID) || id == t.factorIDLocked("push", u.ID)):
		t.setTOTPLocked(u, "", t.cfg.Now())
		return true
	case u.RecoveryCode != "" && id == t.factorIDLocked("recovery-code", u.ID):
		t.setRecoveryCodeLocked(u, "", t.cfg.Now())
		return true
	}
	return false
}

func (t *Tenant) mgmtDeleteMethod(w http.ResponseWriter, r *http.Request, id, amid, scope string) {
	if !t.mgmtAuth(w, r, scope) {
		return
	}
	t.mu.Lock()
	u := t.userByIDLocked(id)
	found := u != nil && t.deleteFactorLocked(u, amid)
	t.mu.Unlock()
	switch {
	case u == nil:
		noSuchUser(w)
	case !found:
		mgmtError(w, http.StatusNotFound, "Authentication method not found", "inexistent_authentication_method")
	default:
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	}
}

// enrollmentJSONLocked is a Guardian enrollment in the legacy shape.
func (t *Tenant) enrollmentJSONLocked(u *User) map[string]any {
	fs := t.factorsLocked(u.ID)
	e := map[string]any{"id": t.factorIDLocked("totp", u.ID), "status": "confirmed", "type": "authenticator",
		"name": "Authenticator app", "auth_method": "authenticator", "enrolled_at": mgmtTime(fs.totpCreated)}
	if !fs.totpLastAuth.IsZero() {
		e["last_auth"] = mgmtTime(fs.totpLastAuth)
	}
	return e
}

func (t *Tenant) mgmtListEnrollments(w http.ResponseWriter, r *http.Request, id string) {
	t.mgmtUser(w, r, ScopeReadUsers, id, func(u *User) {
		list := []map[string]any{}
		if u.TOTPSecret != "" {
			list = append(list, t.enrollmentJSONLocked(u))
		}
		writeJSON(w, http.StatusOK, list)
	})
}

// guardianOwnerLocked finds the user whose current OTP enrollment has that id.
func (t *Tenant) guardianOwnerLocked(id string) *User {
	for _, u := range t.users {
		if u.TOTPSecret != "" && (id == t.factorIDLocked("totp", u.ID)) {
			return u
		}
	}
	return nil
}

func (t *Tenant) mgmtGetGuardianEnrollment(w http.ResponseWriter, r *http.Request, id string) {
	if !t.mgmtAuth(w, r, ScopeReadGuardianEnrollments) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.guardianOwnerLocked(id)
	if u == nil {
		mgmtError(w, http.StatusNotFound, "Enrollment not found", "enrollment_not_found")
		return
	}
	e := t.enrollmentJSONLocked(u)
	e["user_id"] = u.ID
	writeJSON(w, http.StatusOK, e)
}

func (t *Tenant) mgmtDeleteGuardianEnrollment(w http.ResponseWriter, r *http.Request, id string) {
	if !t.mgmtAuth(w, r, ScopeDeleteGuardianEnrollments) {
		return
	}
	t.mu.Lock()
	u := t.guardianOwnerLocked(id)
	if u != nil {
		t.setTOTPLocked(u, "", t.cfg.Now())
	}
	t.mu.Unlock()
	if u == nil {
		mgmtError(w, http.StatusNotFound, "Enrollment not found", "enrollment_not_found")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (t *Tenant) mgmtRegenerateRecoveryCode(w http.ResponseWriter, r *http.Request, id string) {
	t.mgmtUser(w, r, ScopeUpdateUsers, id, func(u *User) {
		code := newRecoveryCode()
		t.setRecoveryCodeLocked(u, code, t.cfg.Now())
		writeJSON(w, http.StatusOK, map[string]any{"recovery_code": code})
	})
}

func (t *Tenant) mgmtInvalidateRememberBrowser(w http.ResponseWriter, r *http.Request, id string) {
	t.mgmtUser(w, r, ScopeUpdateUsers, id, func(u *User) {
		t.factorsLocked(u.ID).rememberedBefore = t.cfg.Now()
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	})
}

// rememberedMFA reports whether an MFA performed at mfaTime may still stand for
// a remembered browser of the user.
func (t *Tenant) rememberedMFA(userID string, mfaTime time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	fs, ok := t.factors[userID]
	return !ok || mfaTime.After(fs.rememberedBefore)
}

// ticketRequest is a POST /api/v2/guardian/enrollments/ticket body.
type ticketRequest struct {
	UserID                   string  `json:"user_id"`
	Email                    *string `json:"email"`
	SendMail                 *bool   `json:"send_mail"`
	EmailLocale              *string `json:"email_locale"`
	Factor                   *string `json:"factor"`
	AllowMultipleEnrollments *bool   `json:"allow_multiple_enrollments"`
}

// parseTicketRequest parses a ticket request body strictly (unknown members
// refused, as Auth0's payload validation does).
func parseTicketRequest(body []byte) (ticketRequest, error) {
	var tr ticketRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tr); err != nil || dec.More() {
		return ticketRequest{}, fmt.Errorf("Payload validation error: invalid JSON body")
	}
	if tr.UserID == "" || len(tr.UserID) > maxPathSegment {
		return ticketRequest{}, fmt.Errorf("Payload validation error: 'Missing required property: user_id'.")
	}
	if tr.Factor != nil && *tr.Factor != "otp" {
		// Auth0 also offers push-notification, phone, email, webauthn-*.
		return ticketRequest{}, fmt.Errorf("auth0test enrolls only factor \"otp\" through tickets")
	}
	return tr, nil
}

// enrollTicket is a Guardian enrollment ticket.
type enrollTicket struct {
	userID  string
	secret  string
	expires time.Time
}

func (t *Tenant) mgmtCreateTicket(w http.ResponseWriter, r *http.Request) {
	if !t.mgmtAuth(w, r, ScopeCreateGuardianTickets) {
		return
	}
	tr, ok := mgmtBody(w, r, parseTicketRequest)
	if !ok {
		return
	}
	id := randomToken(24)
	t.mu.Lock()
	u := t.userByIDLocked(tr.UserID)
	if u != nil {
		t.tickets[id] = &enrollTicket{userID: u.ID, secret: newTOTPSecret(), expires: t.cfg.Now().Add(ticketLifetime)}
	}
	t.mu.Unlock()
	if u == nil {
		noSuchUser(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ticket_id": id,
		"ticket_url": t.url + "/u/guardian/enroll?" + url.Values{"ticket": {id}}.Encode()})
}

// handleEnrollPage is the hosted page of an enrollment ticket: it shows the
// otpauth secret and confirms the enrollment with a one-time code.
func (t *Tenant) handleEnrollPage(w http.ResponseWriter, r *http.Request) {
	if !t.hostedForm(w, r) {
		return
	}
	id := r.Form.Get("ticket")
	now := t.cfg.Now()
	t.mu.Lock()
	tk, ok := t.tickets[id]
	if ok && now.After(tk.expires) {
		delete(t.tickets, id)
		ok = false
	}
	var u *User
	var email string
	var enrolled bool
	if ok {
		u = t.userByIDLocked(tk.userID)
		if u != nil {
			email, enrolled = u.Email, u.TOTPSecret != ""
		}
	}
	t.mu.Unlock()
	if !ok || u == nil {
		t.pageError(w, http.StatusBadRequest, "invalid_ticket", "This enrollment link is invalid or has expired.")
		return
	}
	if enrolled {
		// One OTP factor per user: Auth0 enrolls each factor type once.
		t.pageError(w, http.StatusBadRequest, "already_enrolled", "You are already enrolled in an authenticator app.")
		return
	}
	data := pageData{Page: "enroll", Title: "Secure your account", State: id, Email: email,
		Secret: tk.secret, OTPAuthURI: template.URL(t.otpauthURI(email, tk.secret))}
	if r.Method == http.MethodGet {
		renderPage(w, http.StatusOK, data)
		return
	}
	if !checkTOTP(tk.secret, strings.TrimSpace(r.PostForm.Get("code")), now) {
		data.Error, data.Message = "invalid_code", "The code you entered is invalid"
		renderPage(w, http.StatusBadRequest, data)
		return
	}
	t.mu.Lock()
	_, still := t.tickets[id]
	delete(t.tickets, id) // single use
	var recovery string
	if still && u.TOTPSecret == "" {
		t.setTOTPLocked(u, tk.secret, now)
		t.otpUsedLocked(u.ID, now)
		if u.RecoveryCode == "" {
			recovery = newRecoveryCode()
			t.setRecoveryCodeLocked(u, recovery, now)
		}
	} else {
		still = false
	}
	t.mu.Unlock()
	if !still {
		t.pageError(w, http.StatusBadRequest, "invalid_ticket", "This enrollment link is invalid or has expired.")
		return
	}
	renderPage(w, http.StatusOK, pageData{Page: "enrolled", Title: "You're all set", Email: email, RecoveryCode: recovery})
}

// otpauthURI is the barcode URI of an OTP secret for the user.
func (t *Tenant) otpauthURI(email, secret string) string {
	return "otpauth://totp/" + url.PathEscape(t.Domain()+":"+email) + "?" + url.Values{
		"secret": {secret}, "issuer": {t.Domain()}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"},
	}.Encode()
}
