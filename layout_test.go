package latchkey_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestLayout keeps the package rules of docs true: the domain knows
// neither HTTP nor SQL, and the packages other people import (token,
// bearer, and books, written as a third party would) pull in no database
// driver and none of the auth server's own packages.
func TestLayout(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH")
	}
	const mod = "github.com/latchkey-dev/latchkey"
	imports := goList(t, "{{join .Imports \"\\n\"}}", ".")
	for _, bad := range []string{"net/http", "database/sql"} {
		if slices.Contains(imports, bad) {
			t.Errorf("the domain package imports %s", bad)
		}
	}
	for _, pkg := range []string{"./token", "./bearer", "./books"} {
		for _, dep := range goList(t, "{{join .Deps \"\\n\"}}", pkg) {
			switch {
			case dep == mod, dep == mod+"/server", strings.HasPrefix(dep, mod+"/sqlite"),
				strings.HasPrefix(dep, mod+"/storetest"), strings.HasPrefix(dep, mod+"/cmd"):
				t.Errorf("%s depends on %s", pkg, dep)
			case pkg != "./books" && (dep == "database/sql" || strings.Contains(dep, "sqlite") || strings.Contains(dep, "pgx")):
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}

func goList(t *testing.T, format, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", format, pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}
