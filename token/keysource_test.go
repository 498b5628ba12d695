package token

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestStaticKeysExactLookup(t *testing.T) {
	k := newTestSigner(t, ES256).VerificationKey()
	ks := StaticKeys(k)
	if _, err := ks.Key(context.Background(), k.ID); err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{"", strings.ToUpper(k.ID), k.ID + " ", k.ID[:10]} {
		if _, err := ks.Key(context.Background(), kid); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("kid %q: err = %v", kid, err)
		}
	}
}
