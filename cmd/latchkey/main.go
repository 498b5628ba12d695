// Command latchkey runs the Latchkey auth server, the example books
// resource server, or both with demo data, and manages users and secrets.
//
//	latchkey serve        auth server (:3000)
//	latchkey books        books resource server (:4000)
//	latchkey demo         both on loopback, with demo users and books, data in ./latchkey-data/
//	latchkey user add     create a user (password read from a prompt or stdin)
//	latchkey secret       print a new random shared secret
//	latchkey version      print the version
//
// Configuration comes from flags, the environment and a .env file, in that
// order of precedence; `latchkey help` lists every setting, and
// `latchkey COMMAND -h` those of one command with their defaults.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Environ, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitError carries the process's exit code: 2 for a usage or
// configuration mistake, 1 for anything else.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// exitCode prints err as the one line a failed start ends with.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	var ee *exitError
	code := 1
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintln(stderr, "latchkey:", err)
	return code
}
