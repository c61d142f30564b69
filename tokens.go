package stepup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stepupauth/stepup/store"
	"golang.org/x/oauth2"
)

// tokenRecord is what a session holds for one audience, under the key
// tok:<handle>:<audience key>: the access and refresh tokens (the whole
// record is sealed, see Client.putRecord), and the rotation chain of the
// refresh token (the hashes of the tokens rotated out), of which it is the
// authority. The raw ID token of the latest interactive login is kept in a
// token record of its own, tok:<handle>:idt, with IDToken set only. Page
// loads never read these records. decodeToken is a parser of untrusted
// input.
type tokenRecord struct {
	Subject string // the session's user
	SessExp int64  // the session's absolute end, unix ms: the record's TTL
	Type    string
	Scope   string
	Expiry  int64 // access token's expiry, unix seconds; 0 = unknown
	Access  string
	Refresh string
	IDToken string
	Prev    []string // refreshHash of the refresh tokens rotated out, newest first
	At      int64    // unix ms of the latest rotation; 0 for a login's tokens
}

const (
	tokenVersion     = 2
	maxTokenLen      = 16 << 10 // access and ID tokens
	maxRefreshLen    = 4 << 10
	maxTokenScopeLen = 4 << 10
	idTokenKeyName   = "idt" // never an audienceKey (22 characters)
)

// encodeToken writes t in the token record's binary layout: version (1
// byte, 2) | sub | session end | type | scope | expiry | access | refresh |
// id token | chain count and hashes | rotation time; strings as uvarint
// length + bytes, integers as zig-zag varints.
func encodeToken(t *tokenRecord) []byte {
	w := recWriter{b: make([]byte, 0, 64+len(t.Subject)+len(t.Scope)+len(t.Access)+len(t.Refresh)+len(t.IDToken)+23*len(t.Prev))}
	w.byte(tokenVersion)
	w.str(t.Subject)
	w.varint(t.SessExp)
	w.str(t.Type)
	w.str(t.Scope)
	w.varint(t.Expiry)
	w.str(t.Access)
	w.str(t.Refresh)
	w.str(t.IDToken)
	w.uvarint(uint64(len(t.Prev)))
	for _, p := range t.Prev {
		w.str(p)
	}
	w.varint(t.At)
	return w.b
}

func decodeToken(data []byte) (*tokenRecord, error) {
	rd := recReader{s: string(data)}
	if v := rd.byte(); v != tokenVersion {
		return nil, fmt.Errorf("%w: token record version %d", errCorruptRecord, v)
	}
	t := &tokenRecord{}
	t.Subject = rd.str(maxFieldLen)
	t.SessExp = rd.varint()
	t.Type = rd.str(64)
	t.Scope = rd.str(maxTokenScopeLen)
	t.Expiry = rd.varint()
	t.Access = rd.str(maxTokenLen)
	t.Refresh = rd.str(maxRefreshLen)
	t.IDToken = rd.str(maxTokenLen)
	n := rd.uvarint()
	if n > maxPrev {
		return nil, fmt.Errorf("%w: token record chain too long", errCorruptRecord)
	}
	if n > 0 {
		t.Prev = make([]string, 0, n)
		for range n {
			p := rd.str(refreshHashLen)
			if !rd.bad && !isRefreshHash(p) {
				return nil, fmt.Errorf("%w: token record chain", errCorruptRecord)
			}
			t.Prev = append(t.Prev, p)
		}
	}
	t.At = rd.varint()
	switch {
	case !rd.done():
		return nil, fmt.Errorf("%w: token record layout", errCorruptRecord)
	case t.Subject == "" || t.SessExp <= 0:
		return nil, fmt.Errorf("%w: token record session", errCorruptRecord)
	case t.Expiry < 0 || t.At < 0:
		return nil, fmt.Errorf("%w: token record times", errCorruptRecord)
	}
	return t, nil
}

// tokenKeyName is the key of (handle, audience)'s token record without
// Config.KeyPrefix: the member the session's own index lists.
func tokenKeyName(handle, audience string) string {
	return "tok:" + handle + ":" + audienceKey(audience)
}

func (c *Client) tokenKey(handle, audience string) string {
	return c.cfg.KeyPrefix + tokenKeyName(handle, audience)
}

func (c *Client) idTokenKey(handle string) string {
	return c.cfg.KeyPrefix + "tok:" + handle + ":" + idTokenKeyName
}

// handleIndexKey names the index of the records of one session that are
// not at a key derived from its handle alone: token records (by audience),
// refresh leases and mfa_token bindings. Logout finds them there even after
// the session record has idled out.
func (c *Client) handleIndexKey(handle string) string { return c.cfg.KeyPrefix + "idx:h:" + handle }

// sidIndexKey and subIndexKey name the indexes of the sessions (handles) of
// an Auth0 session id and of a user.
func (c *Client) sidIndexKey(sid string) string {
	return c.cfg.KeyPrefix + "idx:sid:" + shortHash("sid", sid)
}

func (c *Client) subIndexKey(sub string) string {
	return c.cfg.KeyPrefix + "idx:sub:" + shortHash("sub", sub)
}

func (c *Client) indexRemove(ctx context.Context, key, member string) error {
	sctx, done := c.storeContext(ctx)
	if err := done(c.store.IndexRemove(sctx, key, member)); err != nil {
		return fmt.Errorf("stepup: updating a session index: %w", err)
	}
	return nil
}

// readToken returns the token record at key; ErrNoSession when there is
// none (or it does not open or decode: it is absent).
func (c *Client) readToken(ctx context.Context, key string) (*tokenRecord, error) {
	data, err := c.getRecord(ctx, kindToken, key, 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("stepup: reading the session's tokens: %w", err)
	}
	t, err := decodeToken(data)
	if err != nil {
		c.unreadable(ctx, kindToken, err)
		return nil, ErrNoSession
	}
	return t, nil
}

// writeToken writes (handle, audience)'s token record until the session's
// absolute end, listing it in the session's index first (so that Logout
// finds it whatever happens next).
func (c *Client) writeToken(ctx context.Context, handle, audience string, t *tokenRecord, now time.Time) error {
	life := time.Duration(t.SessExp-now.UnixMilli()) * time.Millisecond
	if life <= 0 {
		return ErrNoSession
	}
	name := tokenKeyName(handle, audience)
	if err := c.indexAdd(ctx, c.handleIndexKey(handle), name, life); err != nil {
		return err
	}
	if err := c.putRecord(ctx, c.cfg.KeyPrefix+name, encodeToken(t), life); err != nil {
		return fmt.Errorf("stepup: saving the session's tokens: %w", err)
	}
	return nil
}

// tokenFrom makes a token record of tok for the session r.
func tokenFrom(r *sessionRecord, tok *oauth2.Token) *tokenRecord {
	t := &tokenRecord{Subject: r.Subject, SessExp: r.Expires, Type: tok.TokenType, Access: tok.AccessToken, Refresh: tok.RefreshToken}
	if !tok.Expiry.IsZero() {
		t.Expiry = tok.Expiry.Unix()
	}
	if sc, ok := tok.Extra("scope").(string); ok {
		t.Scope = sc
	}
	return t
}

// storeLoginToken stores a login's (or an MFA step-up's) tokens as the
// session's for audience. A login without a refresh token (no
// offline_access) keeps the refresh token, and its chain, that the session
// held for audience: that costs one read, only then.
func (c *Client) storeLoginToken(ctx context.Context, handle string, r *sessionRecord, audience string, tok *oauth2.Token, continued bool, now time.Time) error {
	t := tokenFrom(r, tok)
	if len(t.Access) > maxTokenLen || len(t.Refresh) > maxRefreshLen || len(t.Scope) > maxTokenScopeLen || len(t.Type) > 64 {
		return errors.New("stepup: the tenant's tokens are over the session's bounds (access token 16 KiB, refresh token 4 KiB, scope 4 KiB)")
	}
	if t.Refresh == "" && continued {
		old, err := c.readToken(ctx, c.tokenKey(handle, audience))
		switch {
		case err == nil:
			t.Refresh, t.Prev = old.Refresh, old.Prev
		case !errors.Is(err, ErrNoSession):
			return err
		}
	}
	return c.writeToken(ctx, handle, audience, t, now)
}

// storeIDToken keeps the raw ID token of an interactive login, sealed, in
// the session's ID-token record (Client.IDToken).
func (c *Client) storeIDToken(ctx context.Context, handle string, r *sessionRecord, raw string, now time.Time) error {
	if len(raw) > maxTokenLen {
		return errors.New("stepup: the ID token is over the session's bound (16 KiB)")
	}
	life := time.Duration(r.Expires-now.UnixMilli()) * time.Millisecond
	if life <= 0 {
		return ErrNoSession
	}
	t := &tokenRecord{Subject: r.Subject, SessExp: r.Expires, IDToken: raw}
	if err := c.putRecord(ctx, c.idTokenKey(handle), encodeToken(t), life); err != nil {
		return fmt.Errorf("stepup: saving the session's ID token: %w", err)
	}
	return nil
}

// Token returns the tokens the session s holds for audience ("" is the
// login's default audience, Config.Audience), read from their sealed token record (one store
// read); an error matching ErrNoSession when there are none. The access
// token may have expired (see Token.Valid); refreshing is the job of a
// token source.
func (c *Client) Token(ctx context.Context, s *Session, audience string) (*oauth2.Token, error) {
	if s == nil || !isRandomToken(s.Handle) {
		return nil, ErrNoSession
	}
	if audience == "" {
		audience = c.cfg.Audience
	}
	t, err := c.readToken(ctx, c.tokenKey(s.Handle, audience))
	if errors.Is(err, ErrNoSession) {
		return nil, fmt.Errorf("%w: no token for audience %q", ErrNoSession, audience)
	}
	if err != nil {
		return nil, err
	}
	if t.Subject != s.Subject {
		return nil, fmt.Errorf("%w: the token record is another user's", ErrNoSession)
	}
	tok := &oauth2.Token{TokenType: t.Type, AccessToken: t.Access, RefreshToken: t.Refresh}
	if t.Expiry != 0 {
		tok.Expiry = time.Unix(t.Expiry, 0)
	}
	if t.Scope != "" {
		tok = tok.WithExtra(map[string]any{"scope": t.Scope})
	}
	return tok, nil
}

// IDToken returns the raw ID token of the session's latest interactive login
// (as the tenant sent it; verified when it was received), kept sealed in the
// session's token records: for id_token_hint at RP-initiated logout, or an
// app that forwards it. A silent login (prompt=none) does not replace it.
// One store read; an error matching ErrNoSession when the session holds
// none (it has ended, or started before this version).
func (c *Client) IDToken(ctx context.Context, s *Session) (string, error) {
	if s == nil || !isRandomToken(s.Handle) {
		return "", ErrNoSession
	}
	t, err := c.readToken(ctx, c.idTokenKey(s.Handle))
	if err != nil {
		return "", err
	}
	if t.Subject != s.Subject || t.IDToken == "" {
		return "", fmt.Errorf("%w: no ID token", ErrNoSession)
	}
	return t.IDToken, nil
}

// endSessionRecords deletes the session of handle with everything it
// holds: the session record, its ID-token and out-of-band records, every
// record its index lists (token records, leases, mfa_token bindings), the
// index itself, and its entries in the sid and user indexes. rec is the
// session's record when the caller has it (it is read otherwise, to find
// those entries). When refresh is not nil, the refresh tokens of its token
// records are appended to it (for revocation).
func (c *Client) endSessionRecords(ctx context.Context, handle string, rec *sessionRecord, refresh *[]string) error {
	c.sessions.drop(handle)
	if rec == nil {
		ls, err := c.readSession(ctx, handle, 0)
		switch {
		case err == nil:
			rec = &ls.r
		case !errors.Is(err, ErrNoSession):
			return err
		}
	}
	sctx, done := c.storeContext(ctx)
	members, err := c.store.IndexMembers(sctx, c.handleIndexKey(handle))
	if err = done(err); err != nil {
		return fmt.Errorf("stepup: listing the session's records: %w", err)
	}
	keys := []string{c.sessionKey(handle), c.idTokenKey(handle), c.outOfBandKey(handle)}
	for _, m := range members {
		if !strings.HasPrefix(m, "tok:"+handle+":") && !strings.HasPrefix(m, "lease:"+handle+":") && !strings.HasPrefix(m, "mfa:"+handle+":") {
			continue // not one of this session's: never delete on an index's word alone
		}
		key := c.cfg.KeyPrefix + m
		if refresh != nil && strings.HasPrefix(m, "tok:") {
			// An unreadable token record is deleted all the same.
			if t, err := c.readToken(ctx, key); err == nil && t.Refresh != "" && !slices.Contains(*refresh, t.Refresh) {
				*refresh = append(*refresh, t.Refresh)
			}
		}
		keys = append(keys, key)
	}
	for _, k := range keys {
		if err := c.deleteKey(ctx, k); err != nil {
			return fmt.Errorf("stepup: deleting a session's records: %w", err)
		}
	}
	if err := c.deleteKey(ctx, c.handleIndexKey(handle)); err != nil {
		return fmt.Errorf("stepup: deleting a session's records: %w", err)
	}
	if rec != nil {
		if rec.SID != "" {
			if err := c.indexRemove(ctx, c.sidIndexKey(rec.SID), handle); err != nil {
				return err
			}
		}
		if err := c.indexRemove(ctx, c.subIndexKey(rec.Subject), handle); err != nil {
			return err
		}
	}
	return nil
}

// Logout ends the session with the given handle for good: it deletes the
// session and its token records, leases and out-of-band records from the
// store (found through the session's index even when the session record
// has idled out), so that no worker or browser can use them any more, then
// revokes its refresh tokens at the tenant's /oauth/revoke (Auth0 revokes
// the token's whole family). It returns nil when the session had already
// ended. A revocation failure is returned (joined, one per token) after the
// local deletion: the tokens are then unusable by us but still valid at the
// tenant until they expire.
func (c *Client) Logout(ctx context.Context, handle string) error {
	if !isRandomToken(handle) {
		return nil
	}
	err := c.logout(ctx, handle)
	if err == nil || onlyRevocationErrors(err) {
		c.emit(ctx, Event{Kind: EventLogout, Session: handlePrefix(handle), Reason: LogoutLocal, Sessions: 1})
	}
	return err
}

// logout is Logout without its event (LogoutHandler emits a fuller one).
func (c *Client) logout(ctx context.Context, handle string) error {
	var refresh []string
	if err := c.endSessionRecords(ctx, handle, nil, &refresh); err != nil {
		return err
	}
	return c.revokeAll(ctx, refresh)
}

func (c *Client) revokeAll(ctx context.Context, refresh []string) error {
	var errs []error
	for _, rt := range refresh {
		if err := c.RevokeRefreshToken(ctx, rt); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LogoutSID ends every session of the Auth0 session id sid (the ID token's
// sid), on every replica that shares the Store, as Logout does for one:
// session records, token records, leases and out-of-band records are
// deleted, then the refresh tokens are revoked (best effort). It returns how
// many live sessions it ended. It is what back-channel logout builds on. A
// store failure stops it (some sessions may have ended: call it again);
// revocation failures are returned joined, after every session has ended.
func (c *Client) LogoutSID(ctx context.Context, sid string) (int, error) {
	if sid == "" || len(sid) > maxFieldLen {
		return 0, errors.New("stepup: LogoutSID needs an Auth0 session id (1 to 1024 bytes)")
	}
	n, err := c.logoutIndexed(ctx, c.sidIndexKey(sid), func(r *sessionRecord) bool { return r.SID == sid })
	if n > 0 {
		c.emit(ctx, Event{Kind: EventLogout, SessionID: sid, Reason: LogoutAdmin, Sessions: n})
	}
	return n, err
}

// LogoutUser ends every session of the user sub, everywhere, as LogoutSID
// does for a session id: for admin actions (a blocked user) and "sign out
// my other sessions" (after removing a factor: end the others, then the
// current one with LogoutHandler or Logout, or start a new login). Every
// replica that shares the Store sees it at once: the sessions are found
// through the Store's user index, not a replica's memory. It returns how
// many live sessions it ended, and emits an EventLogout (Reason
// LogoutAdmin) when there were any.
func (c *Client) LogoutUser(ctx context.Context, sub string) (int, error) {
	if sub == "" || len(sub) > maxFieldLen {
		return 0, errors.New("stepup: LogoutUser needs a user id (sub, 1 to 1024 bytes)")
	}
	n, err := c.logoutIndexed(ctx, c.subIndexKey(sub), func(r *sessionRecord) bool { return r.Subject == sub })
	if n > 0 {
		c.emit(ctx, Event{Kind: EventLogout, Subject: sub, Reason: LogoutAdmin, Sessions: n})
	}
	return n, err
}

// logoutIndexed ends the sessions that the index key lists and that match
// (a session whose record is gone, idled out, has its leftovers deleted;
// one that no longer matches, a session continued under another sid, only
// leaves the index).
func (c *Client) logoutIndexed(ctx context.Context, key string, match func(*sessionRecord) bool) (int, error) {
	return c.logoutIndexedExcept(ctx, key, "", match)
}

// logoutIndexedExcept is logoutIndexed leaving the session with handle keep
// (and its index entry) alone. The refresh tokens of the sessions it ended
// are revoked even when a store failure stops it part way: a retry could
// no longer find them.
func (c *Client) logoutIndexedExcept(ctx context.Context, key, keep string, match func(*sessionRecord) bool) (int, error) {
	var refresh []string
	n, err := c.endIndexed(ctx, key, keep, match, &refresh)
	if n > 0 {
		c.log.InfoContext(ctx, "stepup: sessions ended", "count", n)
	}
	return n, errors.Join(err, c.revokeAll(ctx, refresh))
}

func (c *Client) endIndexed(ctx context.Context, key, keep string, match func(*sessionRecord) bool, refresh *[]string) (int, error) {
	sctx, done := c.storeContext(ctx)
	handles, err := c.store.IndexMembers(sctx, key)
	if err = done(err); err != nil {
		return 0, fmt.Errorf("stepup: reading a session index: %w", err)
	}
	n := 0
	for _, h := range handles {
		if h == keep {
			continue
		}
		if !isRandomToken(h) {
			if err := c.indexRemove(ctx, key, h); err != nil {
				return n, err
			}
			continue
		}
		ls, err := c.readSession(ctx, h, 0)
		var rec *sessionRecord
		switch {
		case err == nil && !match(&ls.r):
			if err := c.indexRemove(ctx, key, h); err != nil {
				return n, err
			}
			continue
		case err == nil:
			rec = &ls.r
		case !errors.Is(err, ErrNoSession):
			return n, err
		}
		if err := c.endSessionRecords(ctx, h, rec, refresh); err != nil {
			return n, err
		}
		if rec != nil {
			// endSessionRecords removed h from its sid and user indexes,
			// key among them (match held).
			n++
			continue
		}
		if err := c.indexRemove(ctx, key, h); err != nil {
			return n, err
		}
	}
	return n, nil
}
