package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// Cookie mode: the contract's /session/* endpoints, for a browser page.
// The refresh token lives only in an HttpOnly cookie, so no script, the
// page's own or an injected one, can read it; the access token is in the
// response body and the page keeps it in memory. Everything that decides
// whether a token is good (rotation, grace, reuse, throttling) is the
// Service's, exactly as for POST /login and POST /token.

const (
	// refreshCookie carries the refresh token.
	refreshCookie = "latchkey_refresh"
	// csrfHeader must be present, with the value "1", on every /session/*
	// request. A cross-site form cannot send a custom header at all, and a
	// cross-site script can only by passing a CORS preflight, which this
	// server answers for the configured origins alone.
	csrfHeader = "X-Latchkey-CSRF"
)

// cookieTokenJSON is the login and refresh body of cookie mode: that of
// POST /login without the refresh token, which is in the cookie.
type cookieTokenJSON struct {
	AccessToken string `json:"accessToken"`
	TokenType   string `json:"tokenType"`
	ExpiresIn   int64  `json:"expiresIn"`
}

func csrfError(description string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "forbidden", Description: description}
}

// csrf refuses, before anything is read or changed, a request that does
// not come from a page of an allowed origin: the Origin header must be
// there, once, and name the auth server's own origin or one of
// Config.CORSOrigins, and the X-Latchkey-CSRF header must be "1". A refused
// request gets 403 and no cookie, so a hostile page cannot even clear one.
func (b *browser) csrf(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		origins := r.Header.Values("Origin")
		switch {
		case len(origins) == 0 || origins[0] == "":
			return csrfError("The request has no Origin header. Cookie-mode requests must come from a web page of an allowed origin.")
		// Browsers write the header in lower case; config was normalised
		// to match, so a different spelling is no browser's.
		case len(origins) > 1 || !b.allowed[origins[0]]:
			return csrfError("Requests from this origin may not use the session cookie.")
		}
		if v := r.Header.Values(csrfHeader); len(v) != 1 || v[0] != "1" {
			return csrfError("The request lacks the header " + csrfHeader + ": 1.")
		}
		return next(w, r)
	}
}

func (b *browser) setRefreshCookie(w http.ResponseWriter, refresh string) {
	http.SetCookie(w, &http.Cookie{
		Name:     refreshCookie,
		Value:    refresh,
		Path:     b.cookiePath,
		MaxAge:   b.cookieMaxAge,
		HttpOnly: true,
		Secure:   b.cookieSecure,
		SameSite: http.SameSiteStrictMode,
	})
}

// clearRefreshCookie tells the browser to drop the cookie (Max-Age=0). The
// attributes match setRefreshCookie's, since a browser deletes only the
// cookie of the same name, path and domain.
func (b *browser) clearRefreshCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     refreshCookie,
		Path:     b.cookiePath,
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   b.cookieSecure,
		SameSite: http.SameSiteStrictMode,
	})
}

func (b *browser) writeSession(w http.ResponseWriter, p *latchkey.TokenPair) {
	b.setRefreshCookie(w, p.RefreshToken)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	encode(w, http.StatusOK, cookieTokenJSON{
		AccessToken: p.AccessToken,
		TokenType:   "Bearer",
		ExpiresIn:   int64(p.ExpiresIn / time.Second),
	})
}

// handleSessionLogin is POST /login with the refresh token in the cookie.
// A browser holds one session: when it signs in again, the session its old
// cookie belonged to is ended, rather than left live and unreachable until
// its idle lifetime runs out.
func (b *browser) handleSessionLogin() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		in, err := readCredentials(w, r)
		if err != nil {
			return err
		}
		pair, err := b.svc.Login(r.Context(), in.Username, in.Password, clientOf(r))
		if err != nil {
			return err // an mfa_required answer included: its mfaToken is not a session
		}
		b.signedIn(w, r, pair)
		return nil
	}
}

// handleSessionLoginMFA is POST /session/login/mfa: POST /login/mfa, the second step of a sign-in
// with TOTP, ending in the cookie like handleSessionLogin.
func (b *browser) handleSessionLoginMFA() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		in, err := readMFA(w, r)
		if err != nil {
			return err
		}
		pair, err := b.svc.LoginMFA(r.Context(), in.MFAToken, in.Code, clientOf(r))
		if err != nil {
			return err
		}
		b.signedIn(w, r, pair)
		return nil
	}
}

// signedIn ends the session of the browser's previous cookie, if any, and
// answers with the new one.
func (b *browser) signedIn(w http.ResponseWriter, r *http.Request, pair *latchkey.TokenPair) {
	if old, err := r.Cookie(refreshCookie); err == nil {
		// The new session stands either way; the old one then ends at
		// its idle lifetime, or with "sign out everywhere".
		if err := b.svc.Logout(r.Context(), old.Value, clientOf(r)); err != nil {
			b.logger.WarnContext(r.Context(), "session login: end the previous session", "err", err)
		}
	}
	b.writeSession(w, pair)
}

// errNoCookie is the answer to a refresh without the cookie.
var errNoCookie = &Error{Status: http.StatusUnauthorized, Code: "invalid_grant",
	Description: "There is no session cookie. Sign in again.", Cause: latchkey.ErrInvalidGrant}

// handleSessionRefresh is POST /token with the cookie as the refresh token.
// A token the Service refuses clears the cookie, so the browser stops
// presenting it; any other failure (the database is down) keeps it, so
// that an outage does not sign anyone out.
func (b *browser) handleSessionRefresh() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := r.Cookie(refreshCookie)
		if err != nil {
			b.clearRefreshCookie(w)
			return errNoCookie
		}
		pair, err := b.svc.Refresh(r.Context(), c.Value, clientOf(r))
		if errors.Is(err, latchkey.ErrInvalidGrant) {
			b.clearRefreshCookie(w)
		}
		if err != nil {
			return err
		}
		b.writeSession(w, pair)
		return nil
	}
}

// handleSessionLogout is POST /logout with the cookie's token, and clears
// the cookie. Without a cookie, or with an unknown token, it is a 204 all
// the same. If revoking fails, the cookie is kept, so that the user can
// try again rather than believe the session ended.
func (b *browser) handleSessionLogout() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if c, err := r.Cookie(refreshCookie); err == nil {
			if err := b.svc.Logout(r.Context(), c.Value, clientOf(r)); err != nil {
				return err
			}
		}
		b.clearRefreshCookie(w)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
