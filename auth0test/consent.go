package auth0test

import (
	"net/http"
	"slices"
	"strings"
)

// needsConsent: Auth0 asks for consent for third-party applications (once per
// user, application and scopes, remembered as a grant) and whenever
// prompt=consent is sent. First-party applications skip it (auth0test does
// not emulate Auth0's rule that localhost callbacks always ask).
func (t *Tenant) needsConsent(tx *loginTx) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	app, ok := t.apps[tx.req.clientID]
	if !ok {
		return false
	}
	if tx.req.hasPrompt("consent") {
		return true
	}
	if !app.ThirdParty {
		return false
	}
	granted := t.grants[tx.userID+" "+app.ClientID]
	for _, s := range tx.req.scopes {
		if !slices.Contains(granted, s) {
			return true
		}
	}
	return false
}

func (t *Tenant) handleConsentPage(w http.ResponseWriter, r *http.Request) {
	tx, ok := t.txFromRequest(w, r)
	if !ok {
		return
	}
	if !tx.awaitingConsent {
		t.pageError(w, http.StatusBadRequest, "invalid_request", "No consent is pending for this login")
		return
	}
	app, _ := t.Application(tx.req.clientID)
	data := pageData{Page: "consent", Title: "Authorize " + app.Name, State: tx.id,
		Message: "", Email: strings.Join(tx.req.scopes, " ")}
	if r.Method == http.MethodGet {
		renderPage(w, http.StatusOK, data)
		return
	}
	tx.awaitingConsent = false
	if r.PostForm.Get("action") != "accept" {
		t.mu.Lock()
		delete(t.txs, tx.id)
		t.mu.Unlock()
		t.redirectError(w, r, tx.req, "access_denied", "User did not authorize the request")
		return
	}
	tx.consented = true
	t.mu.Lock()
	key := tx.userID + " " + tx.req.clientID
	for _, s := range tx.req.scopes {
		if !slices.Contains(t.grants[key], s) {
			t.grants[key] = append(t.grants[key], s)
		}
	}
	t.mu.Unlock()
	t.finishLogin(w, r, tx)
}
