package books

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// openAPIDoc is the part of openapi.json the route test reads.
type openAPIDoc struct {
	OpenAPI  string                                `json:"openapi"`
	Security []map[string][]string                 `json:"security"`
	Paths    map[string]map[string]json.RawMessage `json:"paths"`
}

type openAPIOperation struct {
	Security  *[]map[string][]string    `json:"security"`
	Responses map[string]map[string]any `json:"responses"`
}

// TestOpenAPIMatchesRoutes holds openapi.json and routes.go to each other:
// every route is documented, every documented operation is a route, and
// each says the same thing about authentication.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}

	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true, "trace": true}
	documented := map[string]openAPIOperation{}
	for path, item := range doc.Paths {
		for key, raw := range item {
			if !methods[key] {
				continue // "parameters", "summary", ...
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", key, path, err)
			}
			documented[strings.ToUpper(key)+" "+path] = op
		}
	}

	registered := map[string]route{}
	for _, rt := range routes(Config{}) {
		registered[rt.method+" "+rt.path] = rt
	}

	for key, rt := range registered {
		op, ok := documented[key]
		if !ok {
			t.Errorf("route %s is not in openapi.json", key)
			continue
		}
		isPublic := op.Security != nil && len(*op.Security) == 0
		if isPublic != (rt.access == public) {
			t.Errorf("%s: openapi.json says public=%v, routes.go says access %d", key, isPublic, rt.access)
		}
		_, has401 := op.Responses["401"]
		_, has403 := op.Responses["403"]
		if want := rt.access != public; has401 != want {
			t.Errorf("%s: documents 401 = %v, want %v", key, has401, want)
		}
		if want := rt.access == adminOnly; has403 != want {
			t.Errorf("%s: documents 403 = %v, want %v", key, has403, want)
		}
	}
	for key := range documented {
		if _, ok := registered[key]; !ok {
			t.Errorf("openapi.json documents %s, which routes.go does not serve", key)
		}
	}
}

// TestOpenAPIServed checks the document is what GET /openapi.json returns.
func TestOpenAPIServed(t *testing.T) {
	env := newTestEnv(t)
	w := env.do(t, request{method: "GET", path: "/openapi.json"})
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json = %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	if !json.Valid(w.Body.Bytes()) || w.Body.String() != string(openAPI) {
		t.Error("served document differs from the embedded one")
	}
}
