package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey"
)

const calibrateHelp = "Measure argon2id on this machine and print the LATCHKEY_PASSWORD_HASH that takes about --target per hash\n" +
	"with at most --max-memory, never below OWASP's minimum, and the login rate it allows per core."

// maxCalibrateMemoryKiB is the most memory calibrate proposes: what a
// stored hash may ask for (VerifyPassword refuses more).
const maxCalibrateMemoryKiB = 2 << 20

// calibrateProbeKiB bounds the memory of the measuring runs: argon2id's
// time grows linearly with memory × passes, so a probe at 64 MiB predicts
// larger costs without spending seconds on each.
const calibrateProbeKiB = 64 << 10

func cmdCalibrate(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("latchkey calibrate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	target := fs.Duration("target", 250*time.Millisecond, "time one password hash should take")
	maxMem := fs.String("max-memory", "64MiB", "most memory one hash may use (KiB, MiB or GiB); the server hashes one password per core at once")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: latchkey calibrate [--target 250ms] [--max-memory 64MiB]\n\n%s\n\nFlags:\n", calibrateHelp)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageErr("%v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("calibrate: unexpected argument %q", fs.Arg(0))
	}
	if *target <= 0 || *target > time.Minute {
		return usageErr("calibrate: --target %s must be positive and at most a minute", *target)
	}
	maxKiB, err := parseKiB(*maxMem)
	if err != nil {
		return usageErr("calibrate: --max-memory: %v", err)
	}
	floor := latchkey.MinArgon2Memory(maxArgonPassesTable)
	if maxKiB < floor {
		return usageErr("calibrate: --max-memory %s is below OWASP's least memory for argon2id (%d KiB with t=%d)", *maxMem, floor, maxArgonPassesTable)
	}
	maxKiB = min(maxKiB, maxCalibrateMemoryKiB)

	// A first, untimed run faults the memory in, which a busy server has
	// done long ago and which would double a cold run's time; then the
	// faster of two probes.
	probe := latchkey.Argon2Params{Memory: min(maxKiB, calibrateProbeKiB), Time: 1, Threads: 1}
	timeHash(probe)
	d := min(timeHash(probe), timeHash(probe))
	if err := ctx.Err(); err != nil {
		return err
	}
	perUnit := float64(d) / float64(probe.Memory) // per KiB and pass
	p, metTarget := chooseArgon2(perUnit, *target, maxKiB)
	if err := p.CheckMinimum(); err != nil {
		return fmt.Errorf("calibrate: chose %s, which the server would refuse: %w", p, err) // a bug here, not a bad flag
	}
	if p.Memory > probe.Memory {
		timeHash(p) // faults in the memory the probes did not use
	}
	runs := []time.Duration{timeHash(p), timeHash(p), timeHash(p)}
	slices.Sort(runs)
	median := runs[1]

	cores := runtime.GOMAXPROCS(0)
	perCore := float64(time.Second) / float64(median)
	fmt.Fprintf(e.stdout, "argon2id on this machine (%d cores): %s takes %s per hash\n", cores, probe, d.Round(time.Microsecond))
	fmt.Fprintf(e.stdout, "for a target of %s with at most %s per hash:\n\n  LATCHKEY_PASSWORD_HASH=%s\n\n", *target, formatKiB(maxKiB), p)
	fmt.Fprintf(e.stdout, "%s per hash (median of 3), about %.1f logins/s per core, %.1f/s on %d cores, with %s of memory per hash at once\n",
		median.Round(time.Microsecond), perCore, perCore*float64(cores), cores, formatKiB(p.Memory))
	if !metTarget {
		fmt.Fprintf(e.stdout, "the target is below OWASP's minimum on this machine: this is the cheapest setting that meets it\n")
	}
	return nil
}

// maxArgonPassesTable is the last row of OWASP's table (t=5), whose memory
// is the least any setting may have.
const maxArgonPassesTable = 5

// chooseArgon2 picks the cost for target, given the measured time per KiB
// and pass. Memory comes first, up to maxKiB, as RFC 9106 advises: it is
// what makes guessing on GPUs and ASICs expensive, while passes only cost
// time, which an attacker buys cheaply. Passes then fill the target. If
// maxKiB is too little for a single pass, the fewest passes OWASP allows
// with it are taken; if that is over the target, memory shrinks towards
// that row's minimum. The second result is false when even OWASP's minimum
// takes longer than target.
func chooseArgon2(perUnit float64, target time.Duration, maxKiB uint32) (latchkey.Argon2Params, bool) {
	cost := func(m, t uint32) float64 { return perUnit * float64(m) * float64(t) }
	p := latchkey.Argon2Params{Memory: maxKiB, Threads: 1}
	// 0 when one pass at the cap is already over the target.
	p.Time = uint32(min(float64(target)/cost(maxKiB, 1), 64))
	least := uint32(1)
	for latchkey.MinArgon2Memory(least) > maxKiB {
		least++
	}
	if p.Time >= least {
		return p, true
	}
	p.Time = least
	if cost(p.Memory, p.Time) <= float64(target) {
		return p, true
	}
	p.Memory = max(latchkey.MinArgon2Memory(least), uint32(float64(target)/(perUnit*float64(least))))
	return p, cost(p.Memory, p.Time) <= float64(target)
}

func timeHash(p latchkey.Argon2Params) time.Duration {
	start := time.Now()
	latchkey.HashPassword("calibrate latchkey", p)
	return time.Since(start)
}

// parseKiB reads a memory size with its unit, KiB, MiB or GiB, in KiB.
func parseKiB(s string) (uint32, error) {
	units := []struct {
		suffix string
		kib    uint64
	}{{"GiB", 1 << 20}, {"MiB", 1 << 10}, {"KiB", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(strings.TrimSpace(s), u.suffix); ok {
			v, err := strconv.ParseUint(strings.TrimSpace(n), 10, 32)
			if err != nil || v == 0 || v*u.kib > 1<<32-1 {
				return 0, fmt.Errorf("want a whole number of KiB, MiB or GiB (64MiB), got %q", s)
			}
			return uint32(v * u.kib), nil
		}
	}
	return 0, fmt.Errorf("want a size with its unit, KiB, MiB or GiB (64MiB), got %q", s)
}

// formatKiB writes n KiB in the largest unit that divides it.
func formatKiB(n uint32) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dGiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dMiB", n>>10)
	}
	return fmt.Sprintf("%dKiB", n)
}
