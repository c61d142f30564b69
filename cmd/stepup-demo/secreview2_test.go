package main

import (
	"net/http"
	"strings"
	"testing"
)

// Security review: the step-up's pending change travels in the plain query
// of /account/security/confirm, a GET any site can link to, so an attacker
// chooses the change the victim is asked to confirm. After a (routine)
// MFA, the victim lands on a page saying only 'Change "always ask for MFA
// at sign-in"?' with a Confirm button whose hidden on=0 turns the
// protection off (or "sign out my other sessions", "new recovery code",
// "forget remembered browsers"). A confirmation must be for a change this
// session asked for (bind the pending change to the session, e.g. sealed
// with the session handle), and say what it does.
func TestSecurityConfirmOnlyForTheSessionsOwnChange(t *testing.T) {
	clk := newClock()
	d := startDemoAt(t, map[string]string{}, clk.Now)
	a, b := newAgent(t), d.tenant.NewBrowser()
	if resp, _, _ := a.signIn(b, d.url, "/employees", d.url, alice); resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	// The attacker's link, followed by the victim (fresh MFA: no prompt at all).
	resp, body := a.get(d.url + "/account/security/confirm?action=always&on=0")
	if resp.StatusCode == http.StatusOK && strings.Contains(body, `id="pending"`) && strings.Contains(body, `name="on" value="0"`) {
		t.Fatalf("a cross-site link made the confirmation page offer a change the victim never asked for: %.600s",
			body[strings.Index(body, `id="pending"`):])
	}
}
