package stepup

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// txOfResponse opens the transaction cookie that a redirect to /authorize
// set for state.
func txOfResponse(t *testing.T, c *Client, w *httptest.ResponseRecorder, state string) *txRecord {
	t.Helper()
	for _, ck := range w.Result().Cookies() {
		if ck.Name == c.TransactionCookieName(state) {
			tx, err := c.openTx(state, ck.Value)
			if err != nil {
				t.Fatalf("transaction cookie: %v", err)
			}
			return tx
		}
	}
	t.Fatalf("no transaction cookie for state %s in %v", state, w.Result().Cookies())
	return nil
}

func fullTx() *txRecord {
	r := &txRecord{
		Issuer: "https://t.example/", Policy: MFA.WithMaxAge(time.Minute).Named("mfa@google-oauth2"), MaxAge: 60,
		Connection: "google-oauth2", ReturnTo: "/a?b=c", Audience: "https://api", Silent: true,
	}
	r.Policy.Scopes = []string{"read:x"}
	copy(r.Nonce[:], bytes.Repeat([]byte{1}, 32))
	copy(r.Verifier[:], bytes.Repeat([]byte{2}, 32))
	return r
}

func TestTxEncodingRoundTrip(t *testing.T) {
	for _, r := range []*txRecord{fullTx(), {Issuer: "https://t/", MaxAge: -1, ReturnTo: "/"}} {
		got, err := decodeTx(encodeTx(r))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
	if n := len(encodeTx(fullTx())); n > 256 {
		t.Errorf("a step-up's payload is %d bytes, want a compact one", n)
	}
}

// FuzzDecodeTx: the payload comes back through the browser. Its seal stops
// a forgery first, but decodeTx trusts nothing: it must never panic, and
// what it accepts must survive an encode/decode round trip unchanged.
func FuzzDecodeTx(f *testing.F) {
	good := encodeTx(fullTx())
	f.Add(good)
	f.Add(encodeTx(&txRecord{Issuer: "https://t/", MaxAge: -1, ReturnTo: "/"}))
	f.Add(good[:len(good)-1])
	f.Add(append(bytes.Clone(good), 0))
	f.Add([]byte{txPayloadVersion})
	f.Add([]byte{2, 0})
	f.Add(bytes.Replace(good, []byte("/a?b=c"), []byte("//evil"), 1))
	f.Add(bytes.Replace(good, []byte("google-oauth2"), []byte("google oauth2"), 1))
	f.Add(append(append(bytes.Clone(good[:66]), 0x80, 0x00), good[67:]...)) // an overlong varint
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeTx(data)
		if err != nil {
			if !errors.Is(err, errCorruptTx) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if checkReturnTo(r.ReturnTo) != nil || r.Issuer == "" || r.MaxAge < -1 || r.Policy.MaxAge < 0 ||
			(r.Connection != "" && checkConnection(r.Connection) != nil) {
			t.Fatalf("accepted an invalid record: %+v", r)
		}
		again := encodeTx(r)
		if !bytes.Equal(again, data) {
			t.Fatalf("two encodings of one record:\n%x\n%x", data, again)
		}
		r2, err := decodeTx(again)
		if err != nil {
			t.Fatalf("re-encoded record rejected: %v", err)
		}
		if !cmp.Equal(r, r2) {
			t.Fatalf("round trip changed the record: %+v, %+v", r, r2)
		}
	})
}

// The cookie opens for its own state and expiry only, with any key of the
// ring, and its visible expiry cannot be moved.
func TestTxCookieBinding(t *testing.T) {
	c, _, _ := offlineClient(t, nil)
	ar, err := c.AuthorizeURL(context.Background(), AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	exp, sealed, _ := strings.Cut(ar.Transaction, ".")
	tests := []struct {
		name  string
		state string
		value string
		want  error
	}{
		{"another state", randomToken(), ar.Transaction, ErrStateMismatch},
		{"expiry moved", ar.State, "9" + exp + "." + sealed, ErrStateMismatch},
		{"no expiry", ar.State, sealed, ErrTransactionNotFound},
		{"leading zero", ar.State, "0" + ar.Transaction, ErrTransactionNotFound},
		{"not base64", ar.State, exp + ".%%%", ErrTransactionNotFound},
		{"truncated", ar.State, ar.Transaction[:len(ar.Transaction)-4], ErrStateMismatch},
		{"huge", ar.State, exp + "." + strings.Repeat("A", 5000), ErrTransactionNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.openTx(tc.state, tc.value); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	// A Client with another ring (another app, or a key since removed).
	other, _, _ := offlineClient(t, func(cfg *Config) { cfg.SealingKeys = [][]byte{sealTestKey(9)} })
	if _, err := other.openTx(ar.State, ar.Transaction); !errors.Is(err, ErrStateMismatch) {
		t.Errorf("another ring: got %v, want ErrStateMismatch", err)
	}
	// Rotation: a ring with a new key first still opens the old cookies.
	rotated, _, _ := offlineClient(t, func(cfg *Config) { cfg.SealingKeys = [][]byte{sealTestKey(9), sealTestKey(7)} })
	if _, err := rotated.openTx(ar.State, ar.Transaction); err != nil {
		t.Errorf("after a key rotation: %v", err)
	}
}

// Several tabs: each login has its own cookie; the browser keeps at most
// MaxTransactionCookies (and 6 KB) of them, dropping the oldest.
func TestTransactionCookiesBounded(t *testing.T) {
	c, cs, clock := offlineClient(t, nil)
	login := c.LoginHandler()
	jar := map[string]*http.Cookie{}
	var order []string
	start := func(returnTo string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/login?return_to="+url.QueryEscape(returnTo), nil)
		for _, ck := range jar {
			r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		}
		w := httptest.NewRecorder()
		login.ServeHTTP(w, r)
		if w.Code != http.StatusFound {
			t.Fatalf("login: %d %s", w.Code, w.Body.String())
		}
		for _, ck := range w.Result().Cookies() {
			if ck.MaxAge < 0 {
				delete(jar, ck.Name)
			} else {
				jar[ck.Name] = ck
				order = append(order, ck.Name)
			}
		}
		clock.Advance(time.Second)
		return w
	}
	for i := range 6 {
		start("/tab" + string(rune('a'+i)))
	}
	if len(jar) != MaxTransactionCookies {
		t.Fatalf("%d transaction cookies kept, want %d", len(jar), MaxTransactionCookies)
	}
	for _, name := range order[:2] {
		if jar[name] != nil {
			t.Errorf("the oldest cookie %s was kept", name)
		}
	}
	for _, name := range order[2:] {
		if jar[name] == nil {
			t.Errorf("a recent cookie %s was dropped", name)
		}
	}
	// Long return paths: the total stays within 6 KB.
	for range 4 {
		start("/" + strings.Repeat("x", 2000))
	}
	total := 0
	for _, ck := range jar {
		if len(ck.Value) > maxTxCookieValue {
			t.Errorf("cookie of %d bytes", len(ck.Value))
		}
		total += len(ck.Value)
	}
	if total > maxTxCookiesTotal {
		t.Errorf("%d bytes of transaction cookies kept, want at most %d", total, maxTxCookiesTotal)
	}
	// Malformed and expired cookies are dropped too.
	jar[c.txCookiePrefix()+"AAAAAAAA"] = &http.Cookie{Name: c.txCookiePrefix() + "AAAAAAAA", Value: "garbage"}
	clock.Advance(DefaultTransactionTTL)
	start("/")
	if len(jar) != 1 {
		t.Errorf("after expiry: %d cookies kept (%v), want only the new one", len(jar), jar)
	}
	if n := cs.writes() + cs.gets.Load(); n != 0 {
		t.Errorf("starting logins cost %d store calls, want none", n)
	}
}

// Hostile parameters through LoginHandler and RequireStepUp: a 400 (or, for
// a page's own URL, a login back to the default path), nothing stored, and
// a bounded log line.
func TestHostileAuthorizeInputs(t *testing.T) {
	var logs bytes.Buffer
	c, cs, _ := offlineClient(t, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	mux := http.NewServeMux()
	mux.Handle("GET /login", c.LoginHandler())
	mux.Handle("GET /", c.RequireStepUp(MFA)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	huge := strings.Repeat("<", 900<<10)
	tests := []struct {
		name   string
		target string
		status int
	}{
		{"connection of 900 KB", "/login?connection=" + url.QueryEscape(huge), http.StatusBadRequest},
		{"connection over 128", "/login?connection=" + strings.Repeat("a", 129), http.StatusBadRequest},
		{"connection with a path", "/login?connection=..%2Fadmin", http.StatusBadRequest},
		{"connection with a newline", "/login?connection=a%0Ab", http.StatusBadRequest},
		{"return_to of 900 KB", "/login?return_to=/" + url.QueryEscape(huge), http.StatusBadRequest},
		{"return_to over 2 KB", "/login?return_to=/" + strings.Repeat("a", 2048), http.StatusBadRequest},
		{"page URL of 900 KB", "/" + strings.Repeat("a", 900<<10), http.StatusFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			r := httptest.NewRequest(http.MethodGet, tc.target, nil)
			r.Header.Set("Accept", "text/html")
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("got %d, want %d", w.Code, tc.status)
			}
			if n := cs.writes(); n != 0 {
				t.Errorf("%d store writes, want none", n)
			}
			if n := logs.Len(); n > 2048 {
				t.Errorf("log line of %d bytes, want a bounded one", n)
			}
			if n := len(w.Body.String()); n > 2048 {
				t.Errorf("error page of %d bytes", n)
			}
			if tc.status == http.StatusFound {
				loc, _ := url.Parse(w.Header().Get("Location"))
				if tx := txOfResponse(t, c, w, loc.Query().Get("state")); tx.ReturnTo != "/" {
					t.Errorf("return path %q, want the default", tx.ReturnTo)
				}
			} else if tc.status == http.StatusBadRequest && len(w.Result().Cookies()) != 0 {
				t.Errorf("a refused login set cookies %v", w.Result().Cookies())
			}
		})
	}
}

// An error_description of 1 MB: the AuthorizeError holds 400 bytes of it,
// so the page and the log say the same, bounded.
func TestAuthorizeErrorBounded(t *testing.T) {
	var logs bytes.Buffer
	c, cs, _ := offlineClient(t, func(cfg *Config) { cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	ar, err := c.AuthorizeURL(context.Background(), AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	desc := strings.Repeat("é", 1<<19) // 1 MB, a cut inside a character would be invalid UTF-8
	q := url.Values{"state": {ar.State}, "error": {strings.Repeat("x", 1000)}, "error_description": {desc}}
	_, err = c.Exchange(context.Background(), q, ar.Transaction)
	var ae *AuthorizeError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want *AuthorizeError", err)
	}
	if len(ae.Description) > maxAuthorizeErrorDescr+len("…") || !strings.HasPrefix(desc, strings.TrimSuffix(ae.Description, "…")) ||
		!utf8.ValidString(ae.Description) || len(ae.Code) > maxAuthorizeErrorCode+len("…") {
		t.Errorf("AuthorizeError not bounded on a character: code %d bytes, description %d bytes", len(ae.Code), len(ae.Description))
	}
	r := httptest.NewRequest(http.MethodGet, "/callback?"+q.Encode(), nil)
	r.AddCookie(ar.Cookie())
	w := httptest.NewRecorder()
	c.CallbackHandler().ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Fatalf("callback: %d, want 403", w.Code)
	}
	if logs.Len() > 2048 || !strings.Contains(logs.String(), "éé") {
		t.Errorf("log of %d bytes: want the bounded description", logs.Len())
	}
	if !strings.Contains(w.Body.String(), ae.Description) || !strings.Contains(logs.String(), ae.Description) {
		t.Errorf("the page and the log do not both show the description the error holds:\npage %q\nlog %q", w.Body.String(), logs.String())
	}
	if cs.writes() != 0 {
		t.Errorf("an error callback wrote %d records", cs.writes())
	}
	// Not spent: someone who learnt the state can send the browser here with an error.
	for _, ck := range w.Result().Cookies() {
		if ck.Name == ar.Cookie().Name {
			t.Errorf("an error callback cleared the transaction cookie")
		}
	}
}

// 50,000 anonymous page loads: nothing written to the store, and the heap
// does not grow with them (the memory store kept a 3 KB record for each).
func TestAnonymousFloodWritesNothing(t *testing.T) {
	c, cs, _ := offlineClient(t, nil)
	page := c.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/private?x=1", nil)
	r.Header.Set("Accept", "text/html")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := 50_000
	if testing.Short() {
		n = 5_000
	}
	for range n {
		w := httptest.NewRecorder()
		page.ServeHTTP(w, r)
		if w.Code != http.StatusFound {
			t.Fatalf("got %d, want 302", w.Code)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if w := cs.writes(); w != 0 {
		t.Errorf("%d anonymous page loads wrote %d records, want none", n, w)
	}
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if grown > 5<<20 {
		t.Errorf("the heap grew by %d bytes over %d anonymous page loads, want under 5 MB", grown, n)
	}
	t.Logf("%d anonymous page loads: %d store writes, heap %+d bytes", n, cs.writes(), grown)
}

// Someone who learnt the victim's state (it is in the authorize URL) sends
// the callback from their own browser, and sends the victim's browser to it
// with an error and with forged codes: none of it cancels the victim's
// login, and only the victim's own callback writes to the store.
func TestForeignBrowserCannotCancelLogin(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	victim := h.alice()
	cb := victim.authorize(victim.get(pathPrivate))
	state := cb.Query().Get("state")

	writes := h.cs.writes()
	thief := h.alice()
	for _, q := range []string{cb.RawQuery, "state=" + state + "&code=forged", "state=" + state + "&error=access_denied"} {
		if w := thief.get("/callback?" + q); w.Code != http.StatusBadRequest || thief.cookies[h.c.sessionCookie] != nil {
			t.Fatalf("foreign callback %s: %d, want 400 and no session", q, w.Code)
		}
	}
	if got := h.cs.writes() - writes; got != 0 {
		t.Errorf("foreign callbacks wrote %d records, want none", got)
	}
	// The victim's browser sent to forged callbacks (a cross-site link).
	for _, q := range []string{"state=" + state + "&error=access_denied", "state=" + state + "&code=forged", "state=" + state + "&code=forged"} {
		if w := victim.get("/callback?" + q); w.Code < 400 {
			t.Fatalf("forged callback %s: %d, want an error", q, w.Code)
		}
	}
	if w := victim.callback(cb); w.Code != http.StatusFound || w.Header().Get("Location") != pathPrivate {
		t.Fatalf("the victim's own callback: %d to %q, want 302 to %s", w.Code, w.Header().Get("Location"), pathPrivate)
	}
	if w := victim.get(pathPrivate); w.Code != http.StatusOK {
		t.Errorf("the victim's page: %d, want 200", w.Code)
	}
}
