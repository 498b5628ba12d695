package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Discover reads the OpenID discovery document at baseURL +
// "/.well-known/openid-configuration" and returns its issuer and jwks_uri,
// the URL to give [NewRemote]. It does not insist that issuer equals
// baseURL, because a resource server often reaches the auth server by an
// internal address; the caller should still compare issuer with the issuer
// it expects (see [token.WithIssuer]). client may be nil for a client with
// a 10 s timeout.
func Discover(ctx context.Context, client *http.Client, baseURL string) (issuer, jwksURI string, err error) {
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	body, _, err := getDocument(ctx, client, strings.TrimSuffix(baseURL, "/")+"/.well-known/openid-configuration")
	if err != nil {
		return "", "", fmt.Errorf("discover: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", "", fmt.Errorf("discover: %w", err)
	}
	if doc.Issuer == "" {
		return "", "", errors.New("discover: no issuer")
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", fmt.Errorf("discover: jwks_uri %q is not an absolute http(s) URL", doc.JWKSURI)
	}
	return doc.Issuer, doc.JWKSURI, nil
}
