package stepup_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
)

// A login started and completed by handlers of your own instead of
// LoginHandler and CallbackHandler: the start sets the transaction cookie
// (SetTransactionCookie, which also bounds how many a browser keeps), and the
// callback reads the cookie of its state, gives its value to Exchange and
// expires it. The store holds nothing until the callback.
func ExampleClient_Exchange_handWritten() {
	ctx := context.Background()
	tenant, err := auth0test.Start(auth0test.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer tenant.Close()
	app := auth0test.DefaultApplication()
	client, err := stepup.New(ctx, stepup.Config{
		Domain: tenant.Domain(), ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		RedirectURL: app.CallbackURLs[0], HTTPClient: tenant.Client(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	start := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ar, err := client.AuthorizeURL(r.Context(), stepup.AuthorizeOptions{Policy: stepup.MFA, ReturnTo: "/salaries"})
		if err != nil {
			http.Error(w, "cannot start the login", stepup.ErrorStatus(err))
			return
		}
		client.SetTransactionCookie(w, r, ar)
		http.Redirect(w, r, ar.URL, http.StatusFound)
	})
	callback := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var tx string
		if ck, err := r.Cookie(client.TransactionCookieName(q.Get("state"))); err == nil {
			tx = ck.Value
		}
		login, err := client.Exchange(r.Context(), q, tx)
		if err != nil {
			http.Error(w, err.Error(), stepup.ErrorStatus(err))
			return
		}
		http.SetCookie(w, client.ClearTransactionCookie(q.Get("state")))
		fmt.Fprintf(w, "%s signed in with %v, back to %s", login.IDToken.Subject, login.IDToken.AMR, login.ReturnTo)
	})

	// The browser: the start's answer, the tenant's pages, the callback.
	w := httptest.NewRecorder()
	start.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/login", nil))
	cookies := w.Result().Cookies()
	cb, err := tenant.Login(ctx, w.Header().Get("Location"), auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword})
	if err != nil {
		log.Fatal(err)
	}
	deliver := func(withCookies bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, cb.RequestURI(), nil)
		if withCookies {
			for _, ck := range cookies {
				r.AddCookie(ck)
			}
		}
		w := httptest.NewRecorder()
		callback.ServeHTTP(w, r)
		return w
	}
	// Another browser with the same callback URL (it has no cookie) is
	// refused, and the owner's login is not cancelled by it.
	fmt.Println("another browser:", deliver(false).Code)
	fmt.Println("the owner:", deliver(true).Body.String())
	// The same callback again, even with the cookie: refused.
	_, err = client.Exchange(ctx, cb.Query(), cookies[0].Value)
	fmt.Println("replay:", errors.Is(err, stepup.ErrTransactionNotFound))
	// Output:
	// another browser: 400
	// the owner: auth0|alice signed in with [mfa], back to /salaries
	// replay: true
}
