package auth0test

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// Fixtures for tests of a user's app: the default tenant's users as
// Credentials a Browser fills in, and a builder for more users.

// UserWithMFA is alice: a database user with an enrolled OTP factor (the
// Browser computes her codes from AliceTOTPSecret) and a recovery code.
func UserWithMFA() Credentials { return Credentials{Email: AliceEmail, Password: AlicePassword} }

// UserWithoutMFA is bob: a database user with no factor; a step-up ends in
// error=access_denied at the app's callback.
func UserWithoutMFA() Credentials { return Credentials{Email: BobEmail, Password: BobPassword} }

// SocialUser is carol, a google-oauth2 user with an OTP factor.
func SocialUser() Credentials { return Credentials{Email: CarolEmail} }

// NewUser returns a database user named name (user_id "auth0|name", email
// name@example.test, password "name-password-0123"), with an OTP factor (a
// TOTP secret derived from the name) when withMFA, for Config.Users.
func NewUser(name string, withMFA bool) User {
	u := User{ID: "auth0|" + name, Connection: DatabaseConnection, Email: name + "@example.test",
		Password: name + "-password-0123", Name: strings.ToUpper(name[:min(1, len(name))]) + name[min(1, len(name)):]}
	if withMFA {
		sum := sha256.Sum256([]byte("auth0test totp " + name))
		u.TOTPSecret = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:20])
	}
	return u
}

// Credentials returns what a Browser fills in for u (the OTP comes from u's
// TOTP secret through the tenant).
func (u User) Credentials() Credentials { return Credentials{Email: u.Email, Password: u.Password} }
