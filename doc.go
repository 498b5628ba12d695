// Package latchkey is the domain of the Latchkey auth server: users and
// their roles, password hashing, sessions with rotating refresh tokens, and
// the Service that applies the rules (registration, login, refresh with
// grace and reuse detection, logout, admin operations).
//
// It knows neither HTTP nor SQL. Storage backends implement Store and prove
// it by passing storetest.Run; the HTTP surface lives in package server and
// the wiring in cmd/latchkey.
package latchkey
