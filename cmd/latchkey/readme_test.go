package main

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The README is what a newcomer tries first, so what it shows is tested
// here: its Go code compiles, its walkthrough runs in order against a real
// demo, and the commands, flags and settings it names exist.

// moduleRoot is the checkout, from this package's directory.
const moduleRoot = "../.."

// block is one fenced code block of a Markdown file.
type block struct {
	lang    string // the fence's info string: "go", "sh", "" ...
	section string // the "## " heading it sits under
	text    string
	line    int // where its first line of code is, for messages
}

func markdownBlocks(tb testing.TB, path string) []block {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var (
		blocks  []block
		section string
		cur     *block
	)
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &block{lang: strings.TrimSpace(strings.TrimPrefix(line, "```")), section: section, line: i + 2}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		}
	}
	if cur != nil {
		tb.Fatalf("%s: the code block at line %d is never closed", path, cur.line-1)
	}
	return blocks
}

func readmeBlocks(tb testing.TB, lang, section string) []block {
	tb.Helper()
	var out []block
	for _, b := range markdownBlocks(tb, filepath.Join(moduleRoot, "README.md")) {
		if (lang == "*" || b.lang == lang) && (section == "" || b.section == section) {
			out = append(out, b)
		}
	}
	return out
}

// TestReadmeGoCompiles builds and vets every Go block of the README as
// the file a reader would paste, against this checkout's packages.
func TestReadmeGoCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	blocks := readmeBlocks(t, "go", "")
	if len(blocks) == 0 {
		t.Fatal("no Go block in the README; this test would prove nothing")
	}
	for _, b := range blocks {
		if !strings.HasPrefix(b.text, "package ") {
			t.Errorf("README line %d: a Go block must be a whole file, starting with its package clause, so that it can be compiled as pasted", b.line)
			continue
		}
		dir := t.TempDir()
		file := filepath.Join(dir, "main.go")
		if err := os.WriteFile(file, []byte(b.text), 0o600); err != nil {
			t.Fatal(err)
		}
		// Run from inside the module, a file outside it resolves its
		// imports against this checkout, as a replace directive would.
		for _, args := range [][]string{{"build", "-o", filepath.Join(dir, "bin"), file}, {"vet", file}} {
			cmd := exec.Command("go", args...)
			cmd.Dir = moduleRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("README line %d: go %s: %v\n%s", b.line, args[0], err, out)
			}
		}
	}
}

// TestReadmeSetUp: a newcomer on a fresh machine needs exactly two
// commands, one for the demo and the one CI runs for the tests.
func TestReadmeSetUp(t *testing.T) {
	var cmds []string
	for _, b := range readmeBlocks(t, "*", "Run it") {
		cmds = append(cmds, strings.TrimSpace(b.text))
	}
	const demo, tests = "go run ./cmd/latchkey demo", "go test -race -count=1 ./..."
	if !slices.Equal(cmds, []string{demo, tests}) {
		t.Errorf("the README's set-up blocks are %q, want exactly %q and %q", cmds, demo, tests)
	}
	ci, err := os.ReadFile(filepath.Join(moduleRoot, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(ci), "\n"), tests) {
		t.Errorf(".ci/run does not run %q, the README's test command", tests)
	}
}

// TestReadmeWalkthrough pastes the curl walkthrough's blocks, in order,
// into one shell against a real demo, as the README tells a reader to.
func TestReadmeWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH; the walkthrough needs bash, curl and jq", tool)
		}
	}
	blocks := readmeBlocks(t, "sh", "The tutorial flow, with curl")
	if len(blocks) < 2 {
		t.Fatalf("%d shell blocks in the walkthrough, want the tutorial flow and the admin block", len(blocks))
	}
	var script strings.Builder
	for _, b := range blocks {
		script.WriteString(b.text)
	}
	authURL, booksURL, _ := startDemo(t, t.TempDir(), nil)
	s := strings.NewReplacer(
		"localhost:3000", strings.TrimPrefix(authURL, "http://"),
		"localhost:4000", strings.TrimPrefix(booksURL, "http://"),
	).Replace(script.String())

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// -e and pipefail stop at the first command that fails, as a reader
	// would; -u catches a variable that an earlier block did not set.
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", s)
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s", err, out.String())
	}
	// What each step shows, in the order the steps come.
	steps := []string{
		`"tokenType":"Bearer"`,                      // john logs in
		`Things Fall Apart`,                         // the seed books
		`HTTP/1.1 201 Created`, `Location: /books/`, // john adds a book
		`"title":"No Longer at Ease"`, `"pages":194`, // and changes it
		`"pages":194`,                                 // anna reads it
		`HTTP/1.1 403 Forbidden`, `insufficient_role`, // but may not add one
		`"author":"anna"`, `Reading Achebe`, "\n[]\n", // articles are their authors' own
		`HTTP/1.1 204 No Content`, `"error":"not_found"`, // the book is deleted
		`HTTP/1.1 401 Unauthorized`, `Www-Authenticate: Bearer realm="latchkey"` + "\r\n", // no error: no token was sent
		`"refreshToken":"`,                                   // refresh
		`HTTP/1.1 204 No Content`, `"error":"invalid_grant"`, // logout, then the token is dead
		`"sessions":[`, `"disabled":true`, `"error":"invalid_credentials"`, `"disabled":false`, // the admin block
		" user_updated ", " login_failed ", // the audit log, newest first
	}
	rest := out.String()
	for _, step := range steps {
		i := strings.Index(rest, step)
		if i < 0 {
			t.Fatalf("the walkthrough's output lacks %q after the steps before it:\n%s", step, out.String())
		}
		rest = rest[i+len(step):]
	}
}

// testTimeout bounds a shell or a command a test runs.
const testTimeout = 2 * time.Minute

// TestReadmeCommandsExist: every `latchkey COMMAND` the README lists
// answers -h with exit 0, and every flag it names is one a command has.
func TestReadmeCommandsExist(t *testing.T) {
	blocks := readmeBlocks(t, "", "The binary")
	if len(blocks) != 1 {
		t.Fatalf("%d plain blocks under \"The binary\", want the one listing the commands", len(blocks))
	}
	// Should a command ever ignore -h, it must not start a server on the
	// contract's ports or write next to the tests: it gets loopback port
	// 0, a temporary database and a deadline.
	dir := t.TempDir()
	vars := map[string]string{
		"LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_BOOKS_ADDR": "127.0.0.1:0",
		"LATCHKEY_DATABASE_URL":       "sqlite:" + filepath.Join(dir, "auth.db"),
		"LATCHKEY_BOOKS_DATABASE_URL": "sqlite:" + filepath.Join(dir, "books.db"),
	}
	help := map[string]string{} // command path → its -h
	for _, line := range strings.Split(blocks[0].text, "\n") {
		// A line is "latchkey COMMAND [flags] ARGS", then two spaces or
		// more, then what it does.
		usage := regexp.MustCompile(`\s{2,}`).Split(line, 2)[0]
		for _, use := range strings.Split(usage, " | ") {
			words := strings.Fields(use)
			if len(words) < 2 || words[0] != "latchkey" {
				continue
			}
			var path []string
			for _, w := range words[1:] {
				if !commandWord.MatchString(w) {
					break
				}
				path = append(path, w)
			}
			if len(path) == 0 {
				continue // latchkey COMMAND -h
			}
			args := append([]string{"latchkey"}, path...)
			asksHelp := path[0] != "version" && path[0] != "help"
			if asksHelp {
				args = append(args, "-h")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var out bytes.Buffer
			err := runEnv(ctx, args, env{getenv: func(k string) string { return vars[k] },
				stdin: strings.NewReader(""), stdout: &out, stderr: &out})
			cancel()
			if asksHelp && !errors.Is(err, errHelp) {
				t.Errorf("%s did not answer with its help: %v\n%s", strings.Join(args, " "), err, out.String())
			}
			if code := exitCode(err, &out); code != 0 {
				t.Errorf("%s: exit %d\n%s", strings.Join(args, " "), code, out.String())
			}
			help[strings.Join(path, " ")] = out.String()
			for _, w := range words {
				if f := flagWord.FindStringSubmatch(w); f != nil && !listsFlag(out.String(), f[1]) {
					t.Errorf("the README gives latchkey %s %s, which its -h does not list", strings.Join(path, " "), f[1])
				}
			}
		}
	}
	for _, want := range []string{"serve", "books", "demo", "user add", "secret", "version"} {
		if _, ok := help[want]; !ok {
			t.Errorf("the README's list of commands lacks latchkey %s", want)
		}
	}

	// Flags named in the prose, such as `--access-ttl`, exist too.
	readme, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(slices.Collect(maps.Values(help)), "\n")
	for _, m := range regexp.MustCompile("`[^`\n]*?(--[a-z][a-z-]*)").FindAllSubmatch(readme, -1) {
		if flag := string(m[1]); !listsFlag(all, flag) {
			t.Errorf("the README names the flag %s, which no command has", flag)
		}
	}
}

// listsFlag reports whether a -h output lists flag (given as --name): a
// line "  -name", followed by its type or, for a boolean, the line's end.
func listsFlag(help, flag string) bool {
	name := "  -" + flag[2:]
	return strings.Contains(help, name+" ") || strings.Contains(help, name+"\n")
}

var (
	commandWord = regexp.MustCompile(`^[a-z]+$`)
	flagWord    = regexp.MustCompile(`^\[?(--[a-z-]+)`)
)

// TestDocumentedSettings: the configuration tables of the README and of
// docs/api.md list exactly the settings the binary reads, each with the
// default it really has.
func TestDocumentedSettings(t *testing.T) {
	for _, doc := range []string{"README.md", filepath.Join("docs", "api.md")} {
		t.Run(doc, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(moduleRoot, doc))
			if err != nil {
				t.Fatal(err)
			}
			rows := settingRows(string(b))
			if len(rows) == 0 {
				t.Fatalf("no configuration table in %s", doc)
			}
			for _, s := range settings {
				row, ok := rows[s.env]
				if !ok {
					t.Errorf("%s does not document %s", doc, s.env)
					continue
				}
				if s.def == "" {
					continue
				}
				if got := firstCode(row); got != s.def {
					t.Errorf("%s gives %s the default %q, the binary %q", doc, s.env, got, s.def)
				}
			}
			for name := range rows {
				if !slices.ContainsFunc(settings, func(s setting) bool { return s.env == name || slices.Contains(s.aliases, name) }) {
					t.Errorf("%s documents %s, which the binary does not read", doc, name)
				}
			}
		})
	}
}

// settingRows maps each variable named in the first column of a table row
// (| `LATCHKEY_X`, `LATCHKEY_Y` (alias `Z`) | default | meaning |) to its
// default column.
func settingRows(doc string) map[string]string {
	rows := map[string]string{}
	name := regexp.MustCompile("`([A-Z][A-Z0-9_]+)`")
	for _, line := range strings.Split(doc, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			if strings.HasPrefix(m[1], "LATCHKEY_") || strings.Contains(m[1], "SECRET") {
				rows[m[1]] = cells[2]
			}
		}
	}
	return rows
}

func firstCode(s string) string {
	_, after, ok := strings.Cut(s, "`")
	if !ok {
		return ""
	}
	code, _, _ := strings.Cut(after, "`")
	return code
}
