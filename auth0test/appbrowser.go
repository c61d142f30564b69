package auth0test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
)

// maxSteps bounds the redirects and pages of one Browser.Do.
const maxSteps = 30

// Response is the app's final answer to Browser.Do (its body read, at most 4 MiB).
type Response struct {
	StatusCode int
	Header     http.Header
	Body       string
	// URL is the final URL (the app's page after the callback's redirect).
	URL *url.URL
}

// Get is Do with a GET of rawURL.
func (b *Browser) Get(ctx context.Context, rawURL string, c Credentials) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("auth0test: browser: %w", err)
	}
	return b.Do(req, c)
}

// PostForm is Do with a form POST to rawURL (as a page's form would send it;
// Origin and Sec-Fetch-Site say it comes from the app's own page).
func (b *Browser) PostForm(ctx context.Context, rawURL string, form url.Values, c Credentials) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("auth0test: browser: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", req.URL.Scheme+"://"+req.URL.Host)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.Do(req, c)
}

// Do sends req to the user's app as a person's browser would, navigating:
// it follows the app's redirects into the tenant, goes through the hosted
// pages with c (login, social, OTP from the user's TOTP secret, consent,
// logout confirmation), follows the tenant's redirect to the app's callback
// and the app's redirects after it, and returns the first answer that is not a
// redirect and not a tenant page. Pages records the tenant pages seen. A
// tenant error page is a *PageError; a refused password or code is
// ErrLoginFailed / ErrOTPRejected; SkipOTP stops with ErrMFARequired.
func (b *Browser) Do(req *http.Request, c Credentials) (*Response, error) {
	b.Pages = nil
	tenant, _ := url.Parse(b.t.URL())
	otpTried := false
	setNavigation(req)
	for step := 0; step < maxSteps; step++ {
		resp, body, err := b.fetch(req, 4<<20)
		if err != nil {
			return nil, err
		}
		onTenant := req.URL.Host == tenant.Host
		if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "" {
			loc, err := req.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, fmt.Errorf("%w: bad Location: %v", ErrUnexpectedPage, err)
			}
			next, err := http.NewRequestWithContext(req.Context(), http.MethodGet, loc.String(), nil)
			if err != nil {
				return nil, fmt.Errorf("auth0test: browser: %w", err)
			}
			setNavigation(next)
			if onTenant || loc.Host != req.URL.Host {
				next.Header.Set("Sec-Fetch-Site", "cross-site")
			}
			req = next
			continue
		}
		if !onTenant {
			return &Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: string(body), URL: req.URL}, nil
		}
		page, err := b.readPage(resp.StatusCode, body)
		if err != nil {
			return nil, err
		}
		switch {
		case (page.name == "login" || page.name == "social") && page.errCode != "":
			return nil, fmt.Errorf("%w: %s", ErrLoginFailed, page.message)
		case (page.name == "otp" || page.name == "enroll" || page.name == "recovery") && page.errCode != "":
			return nil, fmt.Errorf("%w: %s", ErrOTPRejected, page.message)
		case page.form == nil:
			// The tenant's own final pages (logged out, logout declined).
			return &Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: string(body), URL: req.URL}, nil
		}
		if err := b.fill(page, c, &otpTried); err != nil {
			return nil, err
		}
		action, err := req.URL.Parse(page.form.action)
		if err != nil {
			return nil, fmt.Errorf("%w: form action: %v", ErrUnexpectedPage, err)
		}
		next, err := http.NewRequestWithContext(req.Context(), http.MethodPost, action.String(), strings.NewReader(page.form.values.Encode()))
		if err != nil {
			return nil, fmt.Errorf("auth0test: browser: %w", err)
		}
		next.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		setNavigation(next)
		next.Header.Set("Origin", tenant.Scheme+"://"+tenant.Host)
		next.Header.Set("Sec-Fetch-Site", "same-origin")
		req = next
	}
	return nil, fmt.Errorf("%w: more than %d redirects and pages", ErrUnexpectedPage, maxSteps)
}

// setNavigation marks req as a top-level navigation of a browser, which is
// how apps tell a page load from an API call.
func setNavigation(req *http.Request) {
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	}
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	if req.Header.Get("Sec-Fetch-Site") == "" {
		req.Header.Set("Sec-Fetch-Site", "none")
	}
}

// Trust makes the browser trust cert as well (an app's test server:
// httptest.Server.Certificate()).
func (b *Browser) Trust(cert *x509.Certificate) {
	b.roots.AddCert(cert)
	tr := b.client.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: b.roots, MinVersion: tls.VersionTLS12}
	b.client.Transport = tr
}

// Cookies returns the browser's cookies for rawURL.
func (b *Browser) Cookies(rawURL string) []*http.Cookie {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil
	}
	return b.client.Jar.Cookies(u)
}

// loopbackJar treats http on loopback as https, as browsers treat
// http://localhost as a secure context: Secure cookies set there are kept and
// sent back.
type loopbackJar struct{ jar *cookiejar.Jar }

func secureLoopback(u *url.URL) *url.URL {
	if u.Scheme != "http" {
		return u
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return u
	}
	cp := *u
	cp.Scheme = "https"
	return &cp
}

func (j loopbackJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	j.jar.SetCookies(secureLoopback(u), cookies)
}

func (j loopbackJar) Cookies(u *url.URL) []*http.Cookie { return j.jar.Cookies(secureLoopback(u)) }
