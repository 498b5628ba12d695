package server

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"net/http"

	"github.com/pquerna/otp"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/bearer"
)

// The account-security endpoints (contract: Account security). Each one
// sits behind bearer.Require with the session check, so a token whose
// session ended is refused here at once.

func handleChangePassword(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			CurrentPassword string `json:"currentPassword"`
			NewPassword     string `json:"newPassword"`
		}
		if err := decode(w, r, &in); err != nil {
			return err
		}
		if in.CurrentPassword == "" || in.NewPassword == "" {
			return badRequest("Both currentPassword and newPassword are required.")
		}
		c, _ := bearer.ClaimsFrom(r.Context())
		if err := svc.ChangePassword(r.Context(), c.Subject, c.SessionID, in.CurrentPassword, in.NewPassword, clientOf(r)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

type mySessionJSON struct {
	sessionJSON
	Current bool `json:"current"`
}

func handleMySessions(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, _ := bearer.ClaimsFrom(r.Context())
		sessions, err := svc.MySessions(r.Context(), c.Subject)
		if err != nil {
			return err
		}
		out := struct {
			Sessions []mySessionJSON `json:"sessions"`
		}{Sessions: make([]mySessionJSON, 0, len(sessions))}
		for _, s := range sessions {
			out.Sessions = append(out.Sessions, mySessionJSON{sessionBody(s), s.ID == c.SessionID})
		}
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusOK, out)
		return nil
	}
}

func handleEndMySession(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, _ := bearer.ClaimsFrom(r.Context())
		if err := svc.EndMySession(r.Context(), c.Subject, c.SessionID, r.PathValue("id"), clientOf(r)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// qrSize is the QR code's width and height in pixels: large enough for a
// phone camera at arm's length, small enough to inline in JSON.
const qrSize = 240

func handleStartTOTP(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Password string `json:"password"`
		}
		if err := decode(w, r, &in); err != nil {
			return err
		}
		if in.Password == "" {
			return badRequest("password is required.")
		}
		c, _ := bearer.ClaimsFrom(r.Context())
		en, err := svc.StartTOTP(r.Context(), c.Subject, c.SessionID, in.Password, clientOf(r))
		if err != nil {
			return err
		}
		qr, err := qrDataURL(en.URL)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusOK, struct {
			Secret     string `json:"secret"`
			OTPAuthURL string `json:"otpauthUrl"`
			QRCode     string `json:"qrCode"`
		}{en.Secret, en.URL, qr})
		return nil
	}
}

// qrDataURL draws the otpauth URL as a QR code, a data:image/png URL the
// page shows without fetching anything (its CSP allows img-src data:).
func qrDataURL(otpauth string) (string, error) {
	key, err := otp.NewKeyFromURL(otpauth)
	if err != nil {
		return "", err
	}
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", err
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

func handleConfirmTOTP(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Code string `json:"code"`
		}
		if err := decode(w, r, &in); err != nil {
			return err
		}
		if in.Code == "" {
			return badRequest("code is required.")
		}
		c, _ := bearer.ClaimsFrom(r.Context())
		codes, err := svc.ConfirmTOTP(r.Context(), c.Subject, c.SessionID, in.Code, clientOf(r))
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusOK, struct {
			RecoveryCodes []string `json:"recoveryCodes"`
		}{codes})
		return nil
	}
}

// handleTOTPStatus is GET /me/totp, which the contract does not list: the
// page asks it whether to offer enrolment or removal (docs/decisions.md).
func handleTOTPStatus(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, _ := bearer.ClaimsFrom(r.Context())
		on, left, err := svc.TOTPStatus(r.Context(), c.Subject)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusOK, struct {
			Enabled           bool `json:"enabled"`
			RecoveryCodesLeft int  `json:"recoveryCodesLeft"`
		}{on, left})
		return nil
	}
}

func handleDisableTOTP(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Password string `json:"password"`
			Code     string `json:"code"`
		}
		if err := decode(w, r, &in); err != nil {
			return err
		}
		if in.Password == "" || in.Code == "" {
			return badRequest("Both password and code are required.")
		}
		c, _ := bearer.ClaimsFrom(r.Context())
		if err := svc.DisableTOTP(r.Context(), c.Subject, c.SessionID, in.Password, in.Code, clientOf(r)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

type mfaBody struct {
	MFAToken string `json:"mfaToken"`
	Code     string `json:"code"`
}

// readMFA decodes a {"mfaToken","code"} body; both are required.
func readMFA(w http.ResponseWriter, r *http.Request) (mfaBody, error) {
	var in mfaBody
	if err := decode(w, r, &in); err != nil {
		return in, err
	}
	if in.MFAToken == "" || in.Code == "" {
		return in, badRequest("Both mfaToken and code are required.")
	}
	return in, nil
}

func handleLoginMFA(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		in, err := readMFA(w, r)
		if err != nil {
			return err
		}
		pair, err := svc.LoginMFA(r.Context(), in.MFAToken, in.Code, clientOf(r))
		if err != nil {
			return err
		}
		writeTokens(w, pair)
		return nil
	}
}

func handleAdminResetPassword(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Password string `json:"password"`
		}
		if err := decode(w, r, &in); err != nil {
			return err
		}
		if in.Password == "" {
			return badRequest("password is required.")
		}
		if err := svc.ResetPassword(r.Context(), actor(r), r.PathValue("id"), in.Password); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func handleAdminRemoveTOTP(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := svc.RemoveTOTP(r.Context(), actor(r), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
