package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// testSuiteKey reports the variables that Latchkey's own tests and CI read
// (LATCHKEY_TEST_POSTGRES_URL, LATCHKEY_REQUIRE_NODE, ...): they share the
// prefix but are no business of the binary.
func testSuiteKey(k string) bool {
	return strings.HasPrefix(k, "LATCHKEY_TEST_") || k == "LATCHKEY_REQUIRE_NODE" ||
		k == "LATCHKEY_REQUIRE_BROWSER" || k == "LATCHKEY_SCREENSHOT" || k == "LATCHKEY_BROWSER_ARTIFACTS"
}

// unknownKeyWarnings returns one line for each LATCHKEY_ variable, in .env
// or in environ ("KEY=value" entries), that is not a setting: a misspelt
// key is otherwise silently ignored and its default used. The line names
// the closest setting when one is close enough to be the intended one.
// Values are never repeated: a misspelt ACCESS_TOKEN_SECRET is a secret.
func unknownKeyWarnings(dotenv map[string]string, environ []string) []string {
	known := map[string]bool{}
	for _, s := range settings {
		known[s.env] = true
		for _, a := range s.aliases {
			known[a] = true
		}
	}
	where := map[string][]string{}
	note := func(k, src string) {
		if known[k] || testSuiteKey(k) {
			return
		}
		if strings.HasPrefix(strings.ToUpper(k), "LATCHKEY_") {
			if !slices.Contains(where[k], src) {
				where[k] = append(where[k], src)
			}
		}
	}
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		note(k, "the environment")
	}
	for k := range dotenv {
		note(k, ".env")
	}
	keys := make([]string, 0, len(where))
	for k := range where {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var lines []string
	for _, k := range keys {
		line := fmt.Sprintf("%s (set in %s) is not a latchkey setting and is ignored", k, strings.Join(where[k], " and "))
		if near := closestKey(k, known); near != "" {
			line += "; did you mean " + near + "?"
		}
		lines = append(lines, line)
	}
	return lines
}

// closestKey returns the known key nearest to k, or "" when none is near
// enough to be what was meant. Names are compared without case and
// without the LATCHKEY_ prefix, so that LATCHKEY_ACCESS_TOKEN_SECRET finds
// ACCESS_TOKEN_SECRET; near enough is within a third of the name's
// length, and at least 2.
func closestKey(k string, known map[string]bool) string {
	bare := func(s string) string { return strings.TrimPrefix(strings.ToUpper(s), "LATCHKEY_") }
	candidates := make([]string, 0, len(known))
	for name := range known {
		candidates = append(candidates, name)
	}
	sort.Strings(candidates) // ties go to the same key on every run
	best, bestD := "", -1
	for _, c := range candidates {
		if d := editDistance(bare(k), bare(c)); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD > max(2, len(bare(best))/3) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes:
// setting names are ASCII.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
