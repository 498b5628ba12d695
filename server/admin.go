package server

import (
	"net/http"
	"strconv"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/bearer"
)

// adminUserJSON is a user as the admin endpoints show it.
type adminUserJSON struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Role      string `json:"role"`
	Disabled  bool   `json:"disabled"`
	CreatedAt string `json:"createdAt"`
}

func adminUserBody(u *latchkey.User) adminUserJSON {
	return adminUserJSON{ID: u.ID, Username: u.Username, Role: string(u.Role), Disabled: u.Disabled, CreatedAt: rfc3339(u.CreatedAt)}
}

// actor is the authenticated caller; routes.go puts every admin handler
// behind bearer.Require, so the claims are there.
func actor(r *http.Request) latchkey.Actor {
	c, _ := bearer.ClaimsFrom(r.Context())
	return latchkey.Actor{UserID: c.Subject, SessionID: c.SessionID, Client: clientOf(r)}
}

func handleAdminListUsers(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		limit := 0
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > latchkey.MaxPageSize {
				return badRequest("limit must be an integer from 1 to " + strconv.Itoa(latchkey.MaxPageSize) + ".")
			}
			limit = n
		}
		users, next, err := svc.ListUsers(r.Context(), actor(r), q.Get("cursor"), limit)
		if err != nil {
			return err
		}
		out := struct {
			Users      []adminUserJSON `json:"users"`
			NextCursor *string         `json:"nextCursor"`
		}{Users: make([]adminUserJSON, 0, len(users))}
		for _, u := range users {
			out.Users = append(out.Users, adminUserBody(u))
		}
		if next != "" {
			out.NextCursor = &next
		}
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusOK, out)
		return nil
	}
}

type adminCreateBody struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

func handleAdminCreateUser(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in adminCreateBody
		if err := decode(w, r, &in); err != nil {
			return err
		}
		if in.Username == "" || in.Password == "" || in.Role == "" {
			return badRequest("username, password and role are required.")
		}
		u, err := svc.AdminCreateUser(r.Context(), actor(r), in.Username, in.Password, latchkey.Role(in.Role))
		if err != nil {
			return err
		}
		w.Header().Set("Location", "/admin/users/"+u.ID)
		encode(w, http.StatusCreated, adminUserBody(u))
		return nil
	}
}

type adminPatchBody struct {
	Role     *string `json:"role"`
	Disabled *bool   `json:"disabled"`
}

func handleAdminUpdateUser(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in adminPatchBody
		if err := decode(w, r, &in); err != nil {
			return err
		}
		var upd latchkey.UserUpdate
		if in.Role != nil {
			role := latchkey.Role(*in.Role)
			upd.Role = &role
		}
		upd.Disabled = in.Disabled
		u, err := svc.UpdateUser(r.Context(), actor(r), r.PathValue("id"), upd)
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, adminUserBody(u))
		return nil
	}
}

type sessionJSON struct {
	ID         string `json:"id"`
	CreatedAt  string `json:"createdAt"`
	LastUsedAt string `json:"lastUsedAt"`
	ExpiresAt  string `json:"expiresAt"`
	UserAgent  string `json:"userAgent"`
	IP         string `json:"ip"`
}

func sessionBody(s *latchkey.Session) sessionJSON {
	return sessionJSON{
		ID: s.ID, CreatedAt: rfc3339(s.CreatedAt), LastUsedAt: rfc3339(s.LastUsedAt),
		ExpiresAt: rfc3339(s.ExpiresAt), UserAgent: s.UserAgent, IP: s.IP,
	}
}

func handleAdminListSessions(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		sessions, err := svc.UserSessions(r.Context(), actor(r), r.PathValue("id"))
		if err != nil {
			return err
		}
		out := struct {
			Sessions []sessionJSON `json:"sessions"`
		}{Sessions: make([]sessionJSON, 0, len(sessions))}
		for _, s := range sessions {
			out.Sessions = append(out.Sessions, sessionBody(s))
		}
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusOK, out)
		return nil
	}
}

func handleAdminRevokeSessions(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := svc.RevokeUserSessions(r.Context(), actor(r), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

type auditEventJSON struct {
	ID        string `json:"id"`
	At        string `json:"at"`
	Type      string `json:"type"`
	UserID    string `json:"userId"`
	SessionID string `json:"sessionId"`
	IP        string `json:"ip"`
	UserAgent string `json:"userAgent"`
	Detail    string `json:"detail"`
}

func handleAdminAudit(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		query := latchkey.AuditQuery{UserID: q.Get("user"), Type: latchkey.AuditType(q.Get("type")), Before: q.Get("cursor")}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > latchkey.MaxPageSize {
				return badRequest("limit must be an integer from 1 to " + strconv.Itoa(latchkey.MaxPageSize) + ".")
			}
			query.Limit = n
		}
		events, next, err := svc.ListAudit(r.Context(), actor(r), query)
		if err != nil {
			return err
		}
		out := struct {
			Events     []auditEventJSON `json:"events"`
			NextCursor *string          `json:"nextCursor"`
		}{Events: make([]auditEventJSON, 0, len(events))}
		for _, e := range events {
			out.Events = append(out.Events, auditEventJSON{
				ID: e.ID, At: rfc3339(e.At), Type: string(e.Type), UserID: e.UserID, SessionID: e.SessionID,
				IP: e.IP, UserAgent: e.UserAgent, Detail: e.Detail,
			})
		}
		if next != "" {
			out.NextCursor = &next
		}
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusOK, out)
		return nil
	}
}
