package auth0test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// Credentials tell a Browser how to get through the hosted pages.
type Credentials struct {
	// Email picks the user: on the database login page (with Password) and on a
	// social connection's page (Password unused).
	Email, Password string
	// OTP is typed on the OTP page; "" computes the user's current code from their
	// TOTP secret with the tenant's clock.
	OTP string
	// RecoveryCode, when set, is used instead of a one-time code: the Browser
	// takes the OTP page's "use a recovery code" way, then acknowledges the new
	// code the tenant shows (LastRecoveryCode returns it).
	RecoveryCode string
	// SkipOTP makes Login stop with ErrMFARequired when the OTP page appears.
	SkipOTP bool
	// DenyConsent answers "no" on the consent page (the default accepts).
	DenyConsent bool
}

// Browser is a user agent for tests: an HTTP client with a cookie jar (so the
// tenant's SSO cookie survives between logins) that fills in the hosted pages'
// forms. Login stops at the callback URL; Get, PostForm and Do drive the
// user's own app end to end (its redirects, the tenant's pages, the callback)
// and return the app's final response. A Browser is not safe for concurrent
// use; give each goroutine its own.
type Browser struct {
	t      *Tenant
	client *http.Client
	roots  *x509.CertPool
	// Pages records the data-page of every page the last Login went through
	// ("login", "social", "otp"), so a test can assert, say, that no OTP was asked.
	Pages []string
	// enrollSecret is the OTP secret of the last enrollment page filled.
	enrollSecret string
	// recoveryCode is the new recovery code the tenant last showed.
	recoveryCode string
}

// LastRecoveryCode is the new recovery code the tenant showed after this
// Browser used one (Credentials.RecoveryCode), "" if none.
func (b *Browser) LastRecoveryCode() string { return b.recoveryCode }

// Enrollment is what a Browser learned on an enrollment-ticket page: the OTP
// secret it enrolled (what a person's authenticator app would keep) and the
// recovery code shown once when the user had none.
type Enrollment struct {
	Secret, RecoveryCode string
}

// Enroll opens an enrollment ticket's URL (Management API POST
// /api/v2/guardian/enrollments/ticket, ticket_url), enrolls the OTP factor it
// shows with a code computed from its secret (Credentials.OTP overrides it),
// and returns the secret: from then on the user's OTP page accepts codes of
// that secret only. An invalid or used ticket is a *PageError. When an app
// redirects to the ticket URL, Browser.Get goes through the same page; then
// LastEnrollment returns the secret.
func (b *Browser) Enroll(ctx context.Context, ticketURL string, c Credentials) (Enrollment, error) {
	b.enrollSecret = ""
	resp, err := b.Get(ctx, ticketURL, c)
	if err != nil {
		return Enrollment{}, err
	}
	if parsePage(resp.Body).name != "enrolled" {
		return Enrollment{}, fmt.Errorf("%w: enrollment did not complete (status %d)", ErrUnexpectedPage, resp.StatusCode)
	}
	e := Enrollment{Secret: b.enrollSecret}
	if m := recoveryRE.FindStringSubmatch(resp.Body); m != nil {
		e.RecoveryCode = html.UnescapeString(m[1])
	}
	return e, nil
}

// LastEnrollment is the OTP secret of the last enrollment page this Browser
// filled ("" if none).
func (b *Browser) LastEnrollment() string { return b.enrollSecret }

// NewBrowser returns a Browser with an empty cookie jar. It trusts the
// tenant's certificate (Trust adds an app's), and, as browsers do, treats
// http://127.0.0.1 and http://localhost as secure for cookies, so an app
// under test on httptest.NewServer keeps its Secure cookies.
func (t *Tenant) NewBrowser() *Browser {
	jar, _ := cookiejar.New(nil)
	c := t.Client()
	c.Jar = loopbackJar{jar}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Browser{t: t, client: c, roots: t.pool.Clone()}
}

// fill completes a hosted page's form with c.
func (b *Browser) fill(page parsedPage, c Credentials, otpTried *bool) error {
	f := page.form
	switch page.name {
	case "login":
		f.values.Set("username", c.Email)
		f.values.Set("password", c.Password)
	case "social":
		f.values.Set("email", c.Email)
	case "consent":
		if c.DenyConsent {
			f.values.Set("action", "deny")
		} else {
			f.values.Set("action", "accept")
		}
	case "logout-confirm":
		f.values.Set("action", "accept")
	case "recovery-new":
		b.recoveryCode = page.recovery
	case "enroll":
		if page.secret == "" {
			return fmt.Errorf("%w: enrollment page without a secret", ErrUnexpectedPage)
		}
		code := c.OTP
		if code == "" {
			code = TOTP(page.secret, b.t.cfg.Now())
		}
		b.enrollSecret = page.secret
		f.values.Set("code", code)
	case "otp":
		if c.SkipOTP {
			return ErrMFARequired
		}
		if c.RecoveryCode != "" {
			if *otpTried {
				return fmt.Errorf("%w: OTP page shown twice", ErrUnexpectedPage)
			}
			*otpTried = true
			f.action = "/u/mfa-recovery-code-challenge"
			f.values = url.Values{"state": {f.values.Get("state")}, "recovery_code": {c.RecoveryCode}}
			return nil
		}
		if *otpTried {
			return fmt.Errorf("%w: OTP page shown twice", ErrUnexpectedPage)
		}
		*otpTried = true
		code := c.OTP
		if code == "" {
			code = b.t.OTP(c.Email)
			if code == "" {
				return fmt.Errorf("auth0test: no OTP: user %q has no TOTP secret; set Credentials.OTP", c.Email)
			}
		}
		f.values.Set("code", code)
	default:
		return fmt.Errorf("%w: page %q", ErrUnexpectedPage, page.name)
	}
	return nil
}

// readPage parses a tenant page and notes its name in Pages; the tenant's
// error page is a *PageError.
func (b *Browser) readPage(status int, body []byte) (parsedPage, error) {
	page := parsePage(string(body))
	if page.name != "" {
		b.Pages = append(b.Pages, page.name)
	}
	if page.name == "error" {
		return page, &PageError{Status: status, Code: page.errCode, Description: page.message}
	}
	return page, nil
}

// fetch sends req and reads the answer's body, up to limit bytes.
func (b *Browser) fetch(req *http.Request, limit int64) (*http.Response, []byte, error) {
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("auth0test: browser: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, nil, fmt.Errorf("auth0test: browser: %w", err)
	}
	return resp, body, nil
}

// Client is the browser's HTTP client (it does not follow redirects).
func (b *Browser) Client() *http.Client { return b.client }

// Login drives an authorization request through the hosted pages and returns the
// callback URL the tenant redirected to (with code and state, or error and
// error_description — an error redirect is not a Go error). A page the tenant
// refuses with an error page returns a *PageError.
func (t *Tenant) Login(ctx context.Context, authorizeURL string, c Credentials) (*url.URL, error) {
	return t.NewBrowser().Login(ctx, authorizeURL, c)
}

// Login: see Tenant.Login. The Browser keeps the SSO cookie for later logins.
func (b *Browser) Login(ctx context.Context, authorizeURL string, c Credentials) (*url.URL, error) {
	b.Pages = nil
	cur, err := url.Parse(authorizeURL)
	if err != nil {
		return nil, fmt.Errorf("auth0test: authorize URL: %w", err)
	}
	base, _ := url.Parse(b.t.URL())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cur.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("auth0test: authorize URL: %w", err)
	}
	otpTried := false
	for step := 0; step < 20; step++ {
		resp, body, err := b.fetch(req, 1<<20)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			loc, err := req.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, fmt.Errorf("%w: bad Location: %v", ErrUnexpectedPage, err)
			}
			if loc.Scheme != base.Scheme || loc.Host != base.Host {
				return loc, nil // the callback (or a logout return URL)
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
			if err != nil {
				return nil, fmt.Errorf("auth0test: browser: %w", err)
			}
			continue
		}
		page, err := b.readPage(resp.StatusCode, body)
		if err != nil {
			return nil, err
		}
		switch {
		case (page.name == "login" || page.name == "social") && page.errCode != "":
			return nil, fmt.Errorf("%w: %s", ErrLoginFailed, page.message)
		case (page.name == "otp" || page.name == "recovery") && page.errCode != "":
			return nil, fmt.Errorf("%w: %s", ErrOTPRejected, page.message)
		case page.name == "logout":
			return nil, fmt.Errorf("%w: the tenant's logged-out page", ErrUnexpectedPage)
		case page.form == nil:
			return nil, fmt.Errorf("%w: status %d, page %q", ErrUnexpectedPage, resp.StatusCode, page.name)
		}
		f := page.form
		if err := b.fill(page, c, &otpTried); err != nil {
			return nil, err
		}
		action, err := req.URL.Parse(f.action)
		if err != nil {
			return nil, fmt.Errorf("%w: form action: %v", ErrUnexpectedPage, err)
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(f.values.Encode()))
		if err != nil {
			return nil, fmt.Errorf("auth0test: browser: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return nil, fmt.Errorf("%w: too many steps", ErrUnexpectedPage)
}

// Logout visits a logout URL (/v2/logout or /oidc/logout) with the browser's
// cookies and returns where the tenant redirected to (nil when it showed its own
// "logged out" page). When the tenant asks the user to confirm (/oidc/logout
// without a hint, or with one that is not this browser's session), Logout
// confirms, and Pages records "logout-confirm"; DeclineLogout says no instead.
func (b *Browser) Logout(ctx context.Context, logoutURL string) (*url.URL, error) {
	return b.logout(ctx, logoutURL, "accept")
}

// DeclineLogout is Logout answering "no" on the confirmation page: the
// session stays, and the error is ErrLogoutDeclined.
func (b *Browser) DeclineLogout(ctx context.Context, logoutURL string) error {
	_, err := b.logout(ctx, logoutURL, "deny")
	return err
}

// ErrLogoutDeclined: DeclineLogout said no on the tenant's confirmation page.
var ErrLogoutDeclined = errors.New("auth0test: logout declined on the confirmation page")

func (b *Browser) logout(ctx context.Context, logoutURL, answer string) (*url.URL, error) {
	b.Pages = nil
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, logoutURL, nil)
	if err != nil {
		return nil, fmt.Errorf("auth0test: logout URL: %w", err)
	}
	for step := 0; step < 3; step++ {
		resp, err := b.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("auth0test: browser: %w", err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			loc, err := req.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, fmt.Errorf("%w: bad Location: %v", ErrUnexpectedPage, err)
			}
			return loc, nil
		}
		page, err := b.readPage(resp.StatusCode, body)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode != http.StatusOK:
			return nil, fmt.Errorf("%w: status %d", ErrUnexpectedPage, resp.StatusCode)
		case page.name == "logout-declined":
			return nil, ErrLogoutDeclined
		case page.name == "logout-confirm" && page.form != nil:
			page.form.values.Set("action", answer)
			action, err := req.URL.Parse(page.form.action)
			if err != nil {
				return nil, fmt.Errorf("%w: form action: %v", ErrUnexpectedPage, err)
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(page.form.values.Encode()))
			if err != nil {
				return nil, fmt.Errorf("auth0test: browser: %w", err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		default:
			return nil, nil
		}
	}
	return nil, fmt.Errorf("%w: too many steps", ErrUnexpectedPage)
}

// HasSession reports whether the browser holds a live SSO session of the tenant.
func (b *Browser) HasSession() bool {
	u, _ := url.Parse(b.t.URL())
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			return b.t.sessionFor(&http.Request{Header: http.Header{"Cookie": {c.String()}}}, b.t.cfg.Now()) != nil
		}
	}
	return false
}

type form struct {
	action string
	values url.Values
}

type parsedPage struct {
	name, errCode, message string
	secret                 string // enrollment page
	recovery               string // a new recovery code shown
	form                   *form
}

var (
	pageRE     = regexp.MustCompile(`<body data-page="([^"]*)"(?: data-error="([^"]*)")?`)
	messageRE  = regexp.MustCompile(`(?s)<p class="error" id="error">(.*?)</p>`)
	formRE     = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)">(.*?)</form>`)
	inputRE    = regexp.MustCompile(`<input[^>]*\bname="([^"]*)"[^>]*>`)
	valueRE    = regexp.MustCompile(`\bvalue="([^"]*)"`)
	secretRE   = regexp.MustCompile(`data-secret="([^"]*)"`)
	recoveryRE = regexp.MustCompile(`<code id="recovery-code">([^<]*)</code>`)
)

// parsePage reads the tenant's own pages (it is not a general HTML parser).
func parsePage(s string) parsedPage {
	var p parsedPage
	if m := pageRE.FindStringSubmatch(s); m != nil {
		p.name, p.errCode = m[1], html.UnescapeString(m[2])
	}
	if m := messageRE.FindStringSubmatch(s); m != nil {
		p.message = html.UnescapeString(m[1])
	}
	if m := recoveryRE.FindStringSubmatch(s); m != nil {
		p.recovery = html.UnescapeString(m[1])
	}
	if m := secretRE.FindStringSubmatch(s); m != nil {
		p.secret = html.UnescapeString(m[1])
	}
	if p.name == "error" && p.message == "" {
		p.message = "(no description)"
	}
	if m := formRE.FindStringSubmatch(s); m != nil {
		f := &form{action: html.UnescapeString(m[1]), values: url.Values{}}
		for _, in := range inputRE.FindAllStringSubmatch(m[2], -1) {
			v := ""
			if vm := valueRE.FindStringSubmatch(in[0]); vm != nil {
				v = html.UnescapeString(vm[1])
			}
			f.values.Set(html.UnescapeString(in[1]), v)
		}
		p.form = f
	}
	return p
}

// IDTokenClaims returns the claims of a valid ID token of the tenant for that
// application and user (iss, sub, aud, iat, exp, auth_time by the tenant's clock,
// plus sid, email, name), a baseline for negative tests to mutate and Sign.
func (t *Tenant) IDTokenClaims(clientID string, user User) map[string]any {
	now := t.cfg.Now()
	return map[string]any{
		"iss":            t.Issuer(),
		"sub":            user.ID,
		"aud":            clientID,
		"iat":            now.Unix(),
		"exp":            now.Add(t.cfg.IDTokenLifetime).Unix(),
		"auth_time":      now.Unix(),
		"sid":            randomToken(16),
		"email":          user.Email,
		"email_verified": true,
		"name":           user.Name,
	}
}

// AccessTokenClaims returns the claims of a valid access token of the tenant for
// the API audience and user (scope space-separated), a baseline to mutate and Sign.
func (t *Tenant) AccessTokenClaims(clientID, audience string, user User, scope string) map[string]any {
	now := t.cfg.Now()
	c := map[string]any{
		"iss": t.Issuer(),
		"sub": user.ID,
		"aud": audience,
		"azp": clientID,
		"iat": now.Unix(),
		"exp": now.Add(t.cfg.AccessTokenLifetime).Unix(),
	}
	if scope != "" {
		c["scope"] = scope
	}
	return c
}
