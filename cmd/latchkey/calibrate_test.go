package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// TestChooseArgon2: memory first up to the cap, passes fill the target,
// and nothing below OWASP's minimum whatever the machine's speed.
func TestChooseArgon2(t *testing.T) {
	// 1 ns per KiB and pass: m=65536,t=1 takes 65.5 µs.
	const perUnit = 1.0
	tests := []struct {
		name   string
		target time.Duration
		maxKiB uint32
		want   latchkey.Argon2Params
		met    bool
	}{
		{"passes fill the target at the cap", 200 * time.Microsecond, 65536, latchkey.Argon2Params{Memory: 65536, Time: 3, Threads: 1}, true},
		{"one pass at the cap is enough", 70 * time.Microsecond, 65536, latchkey.Argon2Params{Memory: 65536, Time: 1, Threads: 1}, true},
		{"too fast a target shrinks memory to t=1's minimum", 1 * time.Microsecond, 65536, latchkey.Argon2Params{Memory: 47104, Time: 1, Threads: 1}, false},
		{"a small cap needs more passes", 1 * time.Microsecond, 16384, latchkey.Argon2Params{Memory: 12288, Time: 3, Threads: 1}, false},
		{"the smallest cap OWASP allows", 1 * time.Microsecond, 7168, latchkey.Argon2Params{Memory: 7168, Time: 5, Threads: 1}, false},
		{"a small cap, a target it can meet", 60 * time.Microsecond, 16384, latchkey.Argon2Params{Memory: 16384, Time: 3, Threads: 1}, true},
		{"memory shrinks only as far as the target needs", 45 * time.Microsecond, 16384, latchkey.Argon2Params{Memory: 15000, Time: 3, Threads: 1}, true},
		{"passes stop at what a stored hash may hold", time.Second, 7168, latchkey.Argon2Params{Memory: 7168, Time: 64, Threads: 1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, met := chooseArgon2(perUnit, tc.target, tc.maxKiB)
			if got != tc.want || met != tc.met {
				t.Errorf("chooseArgon2 = %s, %v; want %s, %v", got, met, tc.want, tc.met)
			}
			if err := got.CheckMinimum(); err != nil {
				t.Errorf("%s is below the minimum: %v", got, err)
			}
			if got.Memory > tc.maxKiB {
				t.Errorf("%s uses more than the %d KiB allowed", got, tc.maxKiB)
			}
		})
	}
}

// TestCalibrate runs the command on this machine with a tiny target: the
// setting it prints is one the server accepts, within the memory given,
// and it says the target could not be met.
func TestCalibrate(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		err := runEnv(context.Background(), append([]string{"latchkey", "calibrate"}, args...), env{
			getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
		})
		return exitCode(err, &errOut), out.String(), errOut.String()
	}
	code, out, errOut := run("--target", "1ms", "--max-memory", "8MiB")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	m := regexp.MustCompile(`(?m)^  LATCHKEY_PASSWORD_HASH=(\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no setting printed:\n%s", out)
	}
	p, err := latchkey.ParseArgon2Params(m[1])
	if err != nil {
		t.Fatalf("the printed setting does not parse: %v", err)
	}
	if err := p.CheckMinimum(); err != nil {
		t.Errorf("the printed setting %s is below the minimum: %v", p, err)
	}
	if p.Memory > 8<<10 {
		t.Errorf("the printed setting %s uses more than 8 MiB", p)
	}
	if !regexp.MustCompile(`about \d+\.\d logins/s per core`).MatchString(out) {
		t.Errorf("no login rate per core:\n%s", out)
	}
	if !strings.Contains(out, "the target is below OWASP's minimum") {
		t.Errorf("a 1ms target met above the minimum?\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-memory", "4MiB"}, "below OWASP's least memory"},
		{[]string{"--max-memory", "64"}, "with its unit"},
		{[]string{"--max-memory", "0MiB"}, "whole number"},
		{[]string{"--target", "0s"}, "must be positive"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		code, _, errOut := run(tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("calibrate %v: exit %d, %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
