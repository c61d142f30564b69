package stepup

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/stepupauth/stepup/store"
)

// RP-initiated logout: the app's sign-out (LogoutHandler), which no other
// site can trigger, and the tenant's end-session URL (LogoutURL).

// ErrCrossSiteRequest reports a state-changing request (a sign-out) that did
// not come from the app's own pages: the browser said it was cross-site or
// same-site (Sec-Fetch-Site), its Origin is not the app's, or it carried
// neither header nor a Referer of the app's origin. Nothing was changed.
// ErrorStatus maps it to 403.
var ErrCrossSiteRequest = errors.New("stepup: cross-site request refused")

// The values of Config.LogoutEndpoint.
const (
	// LogoutEndpointOIDC ends the tenant's session at /oidc/logout (OpenID
	// Connect RP-Initiated Logout 1.0) with id_token_hint, logout_hint (the
	// session's sid), client_id and post_logout_redirect_uri. The default.
	LogoutEndpointOIDC = "oidc"
	// LogoutEndpointV2 ends it at Auth0's own /v2/logout with client_id and
	// returnTo.
	LogoutEndpointV2 = "v2"
)

// maxLogoutForm bounds the body of a sign-out POST (a form with return_to).
const maxLogoutForm = 8 << 10

// LogoutOptions are the per-request parts of the tenant's end-session URL.
type LogoutOptions struct {
	// IDToken is the raw ID token of the session (Client.IDToken), sent as
	// id_token_hint to /oidc/logout, so that the tenant ends that session
	// without asking the user to confirm. Ignored by /v2/logout.
	IDToken string
	// SessionID is the session's Auth0 sid, sent as logout_hint to
	// /oidc/logout. Ignored by /v2/logout.
	SessionID string
	// ReturnTo is a local path of the app ("/goodbye") where the tenant
	// sends the browser after logout: the app's origin (that of
	// Config.RedirectURL) followed by it. Auth0 matches the URL against the
	// application's Allowed Logout URLs exactly, ignoring its query: list
	// each path you pass. Empty: Config.LogoutReturnURL.
	ReturnTo string
}

// LogoutURL returns the tenant's URL that ends Auth0's session and sends the
// browser back to the app: /oidc/logout (Config.LogoutEndpoint
// LogoutEndpointOIDC, the default) or /v2/logout (LogoutEndpointV2), with
// federated when Config.LogoutFederated is set. A ReturnTo that is not a safe
// local path (checkReturnTo's rules, as for return_to at login) gives an
// error matching ErrInvalidAuthorizeOptions.
func (c *Client) LogoutURL(opts LogoutOptions) (string, error) {
	ret := c.cfg.LogoutReturnURL
	if opts.ReturnTo != "" {
		if err := checkReturnTo(opts.ReturnTo); err != nil {
			return "", fmt.Errorf("%w: logout return path: %v", ErrInvalidAuthorizeOptions, err)
		}
		ret = c.origin + opts.ReturnTo
	}
	q := url.Values{"client_id": {c.cfg.ClientID}}
	endpoint := c.logoutURL
	if c.cfg.LogoutEndpoint == LogoutEndpointOIDC {
		endpoint = c.oidcLogoutURL
		q.Set("post_logout_redirect_uri", ret)
		if opts.IDToken != "" {
			q.Set("id_token_hint", opts.IDToken)
		}
		if opts.SessionID != "" {
			q.Set("logout_hint", opts.SessionID)
		}
	} else {
		q.Set("returnTo", ret)
	}
	if c.cfg.LogoutFederated {
		q.Set("federated", "")
	}
	return endpoint + "?" + q.Encode(), nil
}

// LogoutHandler is the app's sign-out. It ends a session only on a POST from
// the app's own pages (see CheckSameOrigin): a request that another site
// caused — a link, an auto-submitting form, an image — is refused with
// ErrCrossSiteRequest through Config.ErrorHandler (403) and changes nothing,
// so no other site can sign the user out, delete their token records or
// revoke the refresh tokens their background jobs use.
//
// GET and HEAD answer a small page with a sign-out button (a POST form to the
// same path, carrying return_to), which may not be framed (clickjacking):
// link to it, or put the same form on your own pages. Other methods get 405.
//
// A POST ends the session with Client.Logout (session, token, lease and
// out-of-band records on every replica; refresh tokens revoked — a
// revocation failure is only logged), clears the cookie and redirects to
// LogoutURL, with the session's ID token (Client.IDToken) and sid as hints,
// and the form's (or query's) return_to: a local path, the default being
// Config.LogoutReturnURL; one that is not safe is ignored. A failing store is
// answered through Config.ErrorHandler (503): the session may still be live,
// so the user is not told they are signed out. A POST without a session
// still clears the cookie and ends the tenant's session (Auth0 then asks the
// user to confirm, having no hint).
func (c *Client) LogoutHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			c.signOutPage(w, r)
			return
		case http.MethodPost:
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if err := c.CheckSameOrigin(r); err != nil {
			c.fail(w, r, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxLogoutForm)
		var returnTo string
		if err := r.ParseForm(); err == nil {
			if rt := r.Form.Get("return_to"); rt != "" && checkReturnTo(rt) == nil {
				returnTo = rt
			}
		}
		s, err := c.sessionFromCookie(r.Context(), r)
		if err != nil && !errors.Is(err, ErrNoSession) {
			c.fail(w, r, err)
			return
		}
		opts := LogoutOptions{ReturnTo: returnTo}
		if s != nil {
			opts.SessionID = s.SessionID
			switch idt, err := c.IDToken(r.Context(), s); {
			case err == nil:
				opts.IDToken = idt
			case !errors.Is(err, ErrNoSession):
				c.fail(w, r, err)
				return
			}
			if err := c.logout(r.Context(), s.Handle); err != nil {
				if !onlyRevocationErrors(err) {
					c.fail(w, r, err)
					return
				}
				c.log.WarnContext(r.Context(), "stepup: revoking a refresh token at logout", "error", err)
			}
			c.emit(r.Context(), Event{Kind: EventLogout, Session: handlePrefix(s.Handle), Subject: s.Subject,
				SessionID: s.SessionID, Connection: s.Connection, Organization: s.OrgID,
				Reason: LogoutLocal, Sessions: 1})
		}
		target, err := c.LogoutURL(opts)
		if err != nil {
			c.fail(w, r, err) // not reached: returnTo was checked
			return
		}
		http.SetCookie(w, c.ClearSessionCookie())
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusSeeOther)
	})
}

var signOutTemplate = template.Must(template.New("signout").Parse(`<!doctype html>
<meta charset="utf-8">
<title>Sign out</title>
<h1>Sign out</h1>
<p>Sign out of this application, and of the sign-in service in this browser?</p>
<form method="post" action="{{.Action}}">
{{if .ReturnTo}}<input type="hidden" name="return_to" value="{{.ReturnTo}}">
{{end}}<button id="stepup-signout" type="submit">Sign out</button>
</form>
`))

// signOutPage answers GET on the sign-out path: a button that POSTs to it.
func (c *Client) signOutPage(w http.ResponseWriter, r *http.Request) {
	data := struct{ Action, ReturnTo string }{Action: r.URL.EscapedPath()}
	if checkReturnTo(data.Action) != nil {
		data.Action = "/logout"
	}
	if rt := r.URL.Query().Get("return_to"); rt != "" && checkReturnTo(rt) == nil {
		data.ReturnTo = rt
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// A framed sign-out button is a click another site can steal.
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	if r.Method == http.MethodHead {
		return
	}
	signOutTemplate.Execute(w, data)
}

// CheckSameOrigin accepts a state-changing request only from the app's own
// pages (LogoutHandler calls it; call it in your own POST handlers, such as
// a security-settings page), and otherwise returns an error matching
// ErrCrossSiteRequest (ErrorStatus: 403). The app's pages are those whose
// origin is that of Config.RedirectURL (the host the session cookie is set
// on):
//
//   - Sec-Fetch-Site, when present, must be same-origin (cross-site,
//     same-site — a sibling subdomain — and none are refused);
//   - Origin, when present, must be the app's origin ("null" is refused);
//   - with neither header, a Referer of the app's origin is required.
//
// Every browser in use sends Origin with a form POST (Chromium, Firefox and
// Safari also send Sec-Fetch-Site), so the third rule serves only old
// browsers and scripts; it fails closed rather than trusting a request that
// could have come from anywhere (a script signs a session out with
// Client.Logout instead).
func (c *Client) CheckSameOrigin(r *http.Request) error {
	sfs := r.Header.Get("Sec-Fetch-Site")
	origin := r.Header.Get("Origin")
	if sfs != "" && sfs != "same-origin" {
		return fmt.Errorf("%w: Sec-Fetch-Site is %s", ErrCrossSiteRequest, clip(truncateUTF8(sfs, 32)))
	}
	if origin != "" {
		if !c.isAppOrigin(origin) {
			return fmt.Errorf("%w: Origin %s is not the app's", ErrCrossSiteRequest, clip(truncateUTF8(origin, 128)))
		}
		return nil
	}
	if sfs != "" {
		return nil
	}
	ref := r.Header.Get("Referer")
	if ref == "" {
		return fmt.Errorf("%w: no Sec-Fetch-Site, Origin or Referer", ErrCrossSiteRequest)
	}
	u, err := url.Parse(ref)
	if err != nil || u.Host == "" || !c.isAppOrigin(u.Scheme+"://"+u.Host) {
		return fmt.Errorf("%w: Referer is not of the app's origin", ErrCrossSiteRequest)
	}
	return nil
}

// isAppOrigin compares an origin ("scheme://host[:port]") with the app's,
// case-insensitively and with the scheme's default port made explicit.
func (c *Client) isAppOrigin(origin string) bool {
	o, ok := normalizeOrigin(origin)
	return ok && o == c.origin
}

// normalizeOrigin returns "scheme://host" (lower case, without the scheme's
// default port) of an http(s) origin, and false for anything else (null,
// another scheme, a path, user info).
func normalizeOrigin(origin string) (string, bool) {
	if len(origin) > 512 {
		return "", false
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", false
	}
	host := strings.ToLower(u.Host)
	if p := u.Port(); (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	return u.Scheme + "://" + host, true
}

// onlyRevocationErrors reports whether every error joined in err (from
// Client.Logout) is the tenant's refusal or failure to revoke a token
// (*TenantError), which Logout returns only after the local deletion. A store
// failure, which leaves the session live, is not.
func onlyRevocationErrors(err error) bool {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var te *TenantError
		if !errors.As(e, &te) || errors.Is(e, store.ErrUnavailable) {
			return false
		}
	}
	return len(errs) > 0
}

// RevokeRefreshToken revokes a refresh token at the tenant's /oauth/revoke.
func (c *Client) RevokeRefreshToken(ctx context.Context, token string) error {
	_, _, err := c.postForm(ctx, "/oauth/revoke", c.revokeURL, url.Values{"token": {token}})
	return err
}
