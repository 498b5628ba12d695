// Package books is the example resource server: the "books service" of the
// tutorials Latchkey grew from, written the way a third party would write a
// service protected by Latchkey's access tokens.
//
// It shows the intended use of the public packages and nothing else: token
// verifies JWTs against keys the service already holds (a JWKS fetched from
// the auth server, or a shared secret), and bearer turns that into
// middleware. The auth server is never called per request, and this package
// imports neither the auth server nor its domain; its SQLite file is opened
// through internal/sqlitedb, which imports nothing of Latchkey either.
//
// Anyone with a valid token may read books and keep private articles;
// changing books takes the admin role. Data lives in a small SQL store
// (SQLite by default, see Open) with its own embedded migrations.
package books
