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
		if err := decodeRequired(w, r, &in, "Both currentPassword and newPassword are required.", &in.CurrentPassword, &in.NewPassword); err != nil {
			return err
		}
		c, _ := bearer.ClaimsFrom(r.Context())
		return noContent(w, svc.ChangePassword(r.Context(), c.Subject, c.SessionID, in.CurrentPassword, in.NewPassword, clientOf(r)))
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
		return noContent(w, svc.EndMySession(r.Context(), c.Subject, c.SessionID, r.PathValue("id"), clientOf(r)))
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
		if err := decodeRequired(w, r, &in, "password is required.", &in.Password); err != nil {
			return err
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
		if err := decodeRequired(w, r, &in, "code is required.", &in.Code); err != nil {
			return err
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
		if err := decodeRequired(w, r, &in, "Both password and code are required.", &in.Password, &in.Code); err != nil {
			return err
		}
		c, _ := bearer.ClaimsFrom(r.Context())
		return noContent(w, svc.DisableTOTP(r.Context(), c.Subject, c.SessionID, in.Password, in.Code, clientOf(r)))
	}
}

type mfaBody struct {
	MFAToken string `json:"mfaToken"`
	Code     string `json:"code"`
}

// readMFA decodes a {"mfaToken","code"} body; both are required.
func readMFA(w http.ResponseWriter, r *http.Request) (mfaBody, error) {
	var in mfaBody
	err := decodeRequired(w, r, &in, "Both mfaToken and code are required.", &in.MFAToken, &in.Code)
	return in, err
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
		if err := decodeRequired(w, r, &in, "password is required.", &in.Password); err != nil {
			return err
		}
		return noContent(w, svc.ResetPassword(r.Context(), actor(r), r.PathValue("id"), in.Password))
	}
}

func handleAdminRemoveTOTP(svc *latchkey.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return noContent(w, svc.RemoveTOTP(r.Context(), actor(r), r.PathValue("id")))
	}
}

// decodeRequired decodes the body into v, then refuses it with msg when
// a required field (a pointer into v) is empty.
func decodeRequired(w http.ResponseWriter, r *http.Request, v any, msg string, required ...*string) error {
	if err := decode(w, r, v); err != nil {
		return err
	}
	for _, f := range required {
		if *f == "" {
			return badRequest(msg)
		}
	}
	return nil
}

// noContent answers 204 for an action that succeeded, or returns its
// error for handle to write.
func noContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
