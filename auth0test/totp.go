package auth0test

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// TOTP returns the RFC 6238 code (HMAC-SHA-1, 6 digits, 30-second steps) of the
// base32 secret at the given time, as authenticator apps and Auth0 Guardian compute
// it. An invalid secret yields "".
func TOTP(secret string, at time.Time) string {
	key, err := decodeBase32(secret)
	if err != nil {
		return ""
	}
	return hotp(key, uint64(at.Unix()/30))
}

// OTP returns the current code of the user with that email (by the tenant's
// clock), or "" when the user does not exist or has no factor enrolled.
func (t *Tenant) OTP(email string) string {
	t.mu.Lock()
	u := t.userByEmailLocked(email, "")
	var secret string
	if u != nil {
		secret = u.TOTPSecret
	}
	t.mu.Unlock()
	if secret == "" {
		return ""
	}
	return TOTP(secret, t.cfg.Now())
}

func hotp(key []byte, counter uint64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	code := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", code%1_000_000)
}

// checkTOTP accepts the code of the current step and of one step either side
// (clock drift), like Auth0 Guardian.
func checkTOTP(secret, code string, now time.Time) bool {
	key, err := decodeBase32(secret)
	if err != nil || len(code) != 6 {
		return false
	}
	step := now.Unix() / 30
	ok := 0
	for d := int64(-1); d <= 1; d++ {
		ok |= subtle.ConstantTimeCompare([]byte(hotp(key, uint64(step+d))), []byte(code))
	}
	return ok == 1
}

func decodeBase32(s string) ([]byte, error) {
	s = strings.ToUpper(strings.ReplaceAll(s, " ", ""))
	s = strings.TrimRight(s, "=")
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("auth0test: invalid base32 secret: %w", err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("auth0test: empty TOTP secret")
	}
	return b, nil
}
