package stepup

import (
	"context"
	"errors"
	"net/url"
	"time"

	"golang.org/x/oauth2"
)

// redeemCode redeems an authorization code at /oauth/token: one POST and
// one decoding of the answer.
//
// Why not x/oauth2's Config.Exchange: it decodes the token endpoint's JSON
// twice (into its token struct, then again into a map for Token.Extra),
// which was a third of Exchange's own cost; and it needs the client
// assertion passed as extra parameters while everything else the Client
// sends to the tenant goes through authenticateForm. This sends what
// Exchange sent: grant_type=authorization_code, code, redirect_uri, the PKCE
// code_verifier (RFC 7636) and the Client's authentication
// (client_secret_post, client_secret_basic or a private_key_jwt assertion;
// authenticateForm). A non-2xx answer is a *TenantError carrying the
// tenant's error and error_description (mfa_token included), as x/oauth2's
// RetrieveError did; a transport failure is a *TenantError too. The result is an *oauth2.Token, as LoginResult.Token
// has always been, with its expiry on the Client's clock (now) and the
// id_token and scope in Extra.
func (c *Client) redeemCode(ctx context.Context, code, verifier string, now time.Time) (*oauth2.Token, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {c.cfg.RedirectURL},
		"code_verifier": {verifier},
	}
	_, body, err := c.postForm(ctx, "/oauth/token", c.tokenURL, form)
	if err != nil {
		return nil, err
	}
	resp, err := parseTokenResponse(body)
	if err != nil {
		return nil, &TenantError{Endpoint: "/oauth/token", StatusCode: 200, Err: err}
	}
	if resp.AccessToken == "" {
		// RFC 6749 §5.1: access_token is required (x/oauth2 refused it too).
		return nil, &TenantError{Endpoint: "/oauth/token", StatusCode: 200, Err: errors.New("stepup: token response has no access_token")}
	}
	tok := &oauth2.Token{
		AccessToken:  resp.AccessToken,
		TokenType:    resp.TokenType,
		RefreshToken: resp.RefreshToken,
		ExpiresIn:    resp.ExpiresIn,
	}
	if resp.ExpiresIn > 0 {
		tok.Expiry = now.Add(time.Duration(resp.ExpiresIn) * time.Second)
	}
	extra := map[string]any{}
	if resp.IDToken != "" {
		extra["id_token"] = resp.IDToken
	}
	if resp.Scope != "" {
		extra["scope"] = resp.Scope
	}
	return tok.WithExtra(extra), nil
}
