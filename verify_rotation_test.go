package stepup

import (
	"net/http"
	"testing"
	"time"

	"github.com/stepupauth/stepup/auth0test"
)

// A signing-key rotation one second after start-up: the next login succeeds
// with one more JWKS fetch (issue 15: the first fetch used to count as an
// unknown-kid refetch, and every login failed for 30 s).
func TestLoginAfterRotationRightAfterStartup(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if w := h.alice().visit(pathPrivate); w.Code != http.StatusOK {
		t.Fatalf("first login: %d", w.Code)
	}
	h.clock.Advance(time.Second)
	h.tn.RotateKeys()
	h.tn.RotateKeys() // past the published "next" key too: the kid is unknown to the cached set
	before := h.tn.Calls("/.well-known/jwks.json")
	if w := h.alice().visit(pathPrivate); w.Code != http.StatusOK {
		t.Fatalf("login 1 s after start-up and a rotation: %d %s", w.Code, w.Body.String())
	}
	if got := h.tn.Calls("/.well-known/jwks.json") - before; got != 1 {
		t.Errorf("JWKS fetches for the login after the rotation: %d, want 1", got)
	}
}

// A JWKS outage during a rotation: the callback answers 503 (the tenant is
// unavailable), never 400 "unknown key"; once the JWKS is back, the next
// login after the failure backoff succeeds, well within the refetch interval.
func TestLoginDuringJWKSOutageAtRotation(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if w := h.alice().visit(pathPrivate); w.Code != http.StatusOK {
		t.Fatalf("first login: %d", w.Code)
	}
	h.clock.Advance(time.Minute)
	h.tn.RotateKeys()
	h.tn.RotateKeys()
	h.tn.InjectFault("/.well-known/jwks.json", auth0test.Fault{Status: http.StatusServiceUnavailable})
	u := h.alice()
	if w := u.callback(u.authorize(u.get(pathPrivate))); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("callback during a JWKS outage: %d %s, want 503", w.Code, w.Body.String())
	}
	h.tn.ClearFaults()
	h.clock.Advance(defaultFailureBackoff)
	if w := h.alice().visit(pathPrivate); w.Code != http.StatusOK {
		t.Fatalf("login after the JWKS is back (one failure backoff later): %d %s", w.Code, w.Body.String())
	}
}
