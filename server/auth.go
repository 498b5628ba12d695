package server

import (
	"context"
	"net/http"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/bearer"
	"github.com/latchkey-dev/latchkey/token"
)

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// readCredentials decodes a {"username","password"} body; both are required.
func readCredentials(w http.ResponseWriter, r *http.Request) (credentials, error) {
	var c credentials
	err := decodeRequired(w, r, &c, "Both username and password are required.", &c.Username, &c.Password)
	return c, err
}

// userJSON is a user as the contract shows it; the password hash never
// leaves the server.
type userJSON struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Role      string `json:"role"`
	CreatedAt string `json:"createdAt"`
}

func userBody(u *latchkey.User) userJSON {
	return userJSON{ID: u.ID, Username: u.Username, Role: string(u.Role), CreatedAt: rfc3339(u.CreatedAt)}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

type tokenJSON struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	TokenType    string `json:"tokenType"`
	ExpiresIn    int64  `json:"expiresIn"`
}

func writeTokens(w http.ResponseWriter, p *latchkey.TokenPair) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	encode(w, http.StatusOK, tokenJSON{
		AccessToken:  p.AccessToken,
		RefreshToken: p.RefreshToken,
		TokenType:    "Bearer",
		ExpiresIn:    int64(p.ExpiresIn / time.Second),
	})
}

func handleRegister(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		in, err := readCredentials(w, r)
		if err != nil {
			return err
		}
		u, err := svc.Register(r.Context(), in.Username, in.Password, clientOf(r))
		if err != nil {
			return err
		}
		encode(w, http.StatusCreated, userBody(u))
		return nil
	}
}

func handleLogin(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		in, err := readCredentials(w, r)
		if err != nil {
			return err
		}
		pair, err := svc.Login(r.Context(), in.Username, in.Password, clientOf(r))
		if err != nil {
			return err
		}
		writeTokens(w, pair)
		return nil
	}
}

// refreshBody accepts the contract's refreshToken and the tutorials' token.
type refreshBody struct {
	RefreshToken string `json:"refreshToken"`
	Token        string `json:"token"`
}

// readRefreshToken decodes a refresh body and returns the one token in it.
func readRefreshToken(w http.ResponseWriter, r *http.Request) (string, error) {
	var b refreshBody
	if err := decode(w, r, &b); err != nil {
		return "", err
	}
	switch {
	case b.RefreshToken != "" && b.Token != "" && b.RefreshToken != b.Token:
		return "", badRequest("Send the refresh token as refreshToken or token, not two different ones.")
	case b.RefreshToken != "":
		return b.RefreshToken, nil
	case b.Token != "":
		return b.Token, nil
	default:
		return "", badRequest("refreshToken is required.")
	}
}

func handleToken(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tok, err := readRefreshToken(w, r)
		if err != nil {
			return err
		}
		pair, err := svc.Refresh(r.Context(), tok, clientOf(r))
		if err != nil {
			return err
		}
		writeTokens(w, pair)
		return nil
	}
}

func handleLogout(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tok, err := readRefreshToken(w, r)
		if err != nil {
			return err
		}
		if err := svc.Logout(r.Context(), tok, clientOf(r)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func handleLogoutAll(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		claims, _ := bearer.ClaimsFrom(r.Context())
		if err := svc.LogoutAll(r.Context(), claims.Subject, claims.SessionID, clientOf(r)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func handleMe(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		claims, _ := bearer.ClaimsFrom(r.Context())
		u, err := svc.User(r.Context(), claims.Subject)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusOK, userBody(u))
		return nil
	}
}

// sessionCheck makes the auth server's Bearer endpoints refuse access
// tokens whose session is over.
func sessionCheck(svc *latchkey.Service) func(context.Context, *token.Claims) error {
	return func(ctx context.Context, c *token.Claims) error {
		return svc.CheckSession(ctx, c.SessionID)
	}
}
