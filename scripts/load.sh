#!/usr/bin/env bash
# Load test of Latchkey on loopback: protected GET /books vs the same handler
# without auth and vs a bare handler serving the same bytes from memory,
# refresh-token rotation end to end on SQLite, and login vs the argon2id
# hash it computes. One run measures everything, so ratios compare
# numbers taken minutes apart on the same machine, never across runs.
#
# Needs: Go, curl, taskset (util-linux) and wrk. Install wrk on Debian/Ubuntu:
#
#     apt-get install wrk
#
# The servers run pinned to CPU $SERVER_CPU (default 0) and the load
# generators to CPU $CLIENT_CPU (default 1), so the server gets one core, as
# in the issue's baseline (a bare Go handler pinned to one core, wrk on the
# other). Everything listens on 127.0.0.1 with ports the kernel picks, in a
# temporary directory that is removed at the end; every process started here
# is killed on exit, and each is bounded in time as well.
#
# Settings (environment):
#   DURATION=10s       length of each measured case (wrk -d and the Go client)
#   ROUNDS=3           GET /books: the five wrk cases run this many times,
#                      interleaved (each round in a rotated order), DURATION
#                      each; each case reports its
#                      median, and its ratio is the median of the per-round
#                      ratios to noauth of the same round, so that a drift in
#                      the machine's speed (a shared VM) lands on both sides
#   CONNECTIONS=32     wrk -c
#   THREADS=1          wrk -t
#   SESSIONS=32        refresh: concurrent sessions, one client goroutine each
#   LOGIN_WORKERS="1 4" login: concurrent clients; for each value N, login-N
#                      is compared with argon2id-N, N goroutines hashing on the
#                      server's core, i.e. at the same concurrency
#   SERVER_CPU=0 CLIENT_CPU=1
#   PARTS="books refresh login"  which parts to run (GET /books alone: PARTS=books)
#   PG_URL=            PostgreSQL URL (loopback only); set, GET /books is also
#                      measured on a PostgreSQL books store (case pg-books), in
#                      a schema of its own that loadtarget drops at exit
#   PROFILE=auth       after the GET /books rounds, one more DURATION of wrk on
#                      this loadtarget case (auth, noauth, nocheck, pg-books,
#                      bare) under a CPU profile; its go tool pprof -top is
#                      printed after the table (needs the go tool)
#   OLD_REV=           a commit: its `latchkey demo` runs beside the current
#                      one (built from git archive of that commit, its own
#                      data and token) as case demo-books-old, for a
#                      before/after of the books server in one run
#   KEEP=1             keep the temporary directory (logs) for inspection
#
# Besides req/s, each GET /books case reports the server's CPU time per
# request (the sum over its threads of /proc/PID/task/*/schedstat during
# the wrk run, divided by the requests wrk counted): on a shared VM,
# where another tenant's load moves req/s by a third between rounds, it
# moves much less, and "cpu vs bare" (bare's CPU per request over the
# case's, per round) is the throughput ratio on a saturated core.
#
# Usage: scripts/load.sh            (from anywhere; about 4 minutes with defaults)
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
SESSIONS=${SESSIONS:-32}
LOGIN_WORKERS=${LOGIN_WORKERS:-1 4}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
KEEP=${KEEP:-0}
PARTS=${PARTS:-books refresh login}
PG_URL=${PG_URL:-}
PROFILE=${PROFILE:-}
OLD_REV=${OLD_REV:-}
part() { [[ " $PARTS " == *" $1 "* ]]; }

die() { echo "load.sh: $*" >&2; exit 1; }

if [[ -n $PG_URL ]]; then
	case $PG_URL in
	postgres://*@127.0.0.1[:/]* | postgres://*@localhost[:/]* | postgresql://*@127.0.0.1[:/]* | postgresql://*@localhost[:/]*) ;;
	*) die "PG_URL must name a server on 127.0.0.1 or localhost" ;;
	esac
fi

command -v wrk >/dev/null 2>&1 || die "wrk not found. Install it first: apt-get install wrk (Debian/Ubuntu)"
command -v taskset >/dev/null 2>&1 || die "taskset not found. Install it: apt-get install util-linux"
command -v curl >/dev/null 2>&1 || die "curl not found. Install it: apt-get install curl"
command -v go >/dev/null 2>&1 || die "go not found"
[[ $(nproc) -ge 2 ]] || echo "load.sh: warning: $(nproc) CPU(s); server and client share a core" >&2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-load.XXXXXX")
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ $KEEP == 1 ]]; then
		echo "load.sh: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Seconds of DURATION, for time bounds (accepts 10s, 1m, or a bare number).
secs() {
	local d=$1
	case $d in
	*ms) echo 1 ;;
	*s) echo "${d%s}" ;;
	*m) echo $((${d%m} * 60)) ;;
	*) echo "$d" ;;
	esac
}
DSECS=$(secs "$DURATION")
BOUND=$((DSECS * (8 * ROUNDS + 8) + 180)) # no server outlives the whole run

echo "== building into $TMP/bin"
(cd "$ROOT" && go build -o "$TMP/bin/" ./cmd/latchkey ./scripts/loadtarget ./scripts/refreshload)
if [[ -n $OLD_REV ]]; then
	echo "== building latchkey at $OLD_REV into $TMP/bin-old"
	mkdir -p "$TMP/old-src" "$TMP/bin-old"
	(cd "$ROOT" && git archive "$OLD_REV") | tar -x -C "$TMP/old-src" || die "git archive $OLD_REV failed"
	(cd "$TMP/old-src" && go build -o "$TMP/bin-old/" ./cmd/latchkey) || die "cannot build $OLD_REV"
fi

# addr_from FILE PATTERN: waits for a line of FILE and prints the address
# sed extracts with PATTERN.
addr_from() {
	local file=$1 pattern=$2 i a
	for i in $(seq 1 100); do
		a=$(sed -n "$pattern" "$file" 2>/dev/null | head -n1)
		if [[ -n $a ]]; then
			echo "$a"
			return 0
		fi
		sleep 0.1
	done
	die "no address in $file; its log: $(cat "$file" "${file%.out}.err" 2>/dev/null | tail -n 20)"
}

wait_healthy() {
	local url=$1 i
	for i in $(seq 1 100); do
		if curl -fsS -o /dev/null "$url/healthz" 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	die "$url/healthz did not answer"
}

# start_demo NAME BINDIR: `latchkey demo` from BINDIR in $TMP/NAME, pinned;
# sets DEMO_AUTH and DEMO_BOOKS.
start_demo() {
	local name=$1 bindir=$2
	mkdir -p "$TMP/$name"
	(
		cd "$TMP/$name"
		exec env -u ACCESS_TOKEN_SECRET -u TOKEN_SECRET \
			LATCHKEY_ADDR=127.0.0.1:0 LATCHKEY_BOOKS_ADDR=127.0.0.1:0 \
			LATCHKEY_DATABASE_URL="sqlite:$TMP/$name/auth.db" \
			LATCHKEY_BOOKS_DATABASE_URL="sqlite:$TMP/$name/books.db" \
			LATCHKEY_ISSUER=http://localhost:3000 LATCHKEY_AUDIENCE=latchkey \
			LATCHKEY_SIGNING_ALG=ES256 LATCHKEY_LOG_LEVEL=info \
			timeout "$BOUND" taskset -c "$SERVER_CPU" "$bindir/latchkey" demo
	) >"$TMP/$name.out" 2>"$TMP/$name.err" &
	PIDS+=($!)
	DEMO_TIMEOUT_PID=$!
	# The demo prints "auth server on ADDR, books server on ADDR", ADDR with or
	# without http://.
	DEMO_AUTH=http://$(addr_from "$TMP/$name.out" 's|.*auth server on \(http://\)\{0,1\}\([^,]*\),.*|\2|p')
	DEMO_BOOKS=http://$(addr_from "$TMP/$name.out" 's|.*books server on \(http://\)\{0,1\}\([^ ]*\).*|\2|p')
	wait_healthy "$DEMO_AUTH"
	wait_healthy "$DEMO_BOOKS"
}

mkdir -p "$TMP/target"
echo "== starting latchkey demo on CPU $SERVER_CPU"
start_demo demo "$TMP/bin"
DEMO_PID=$(pgrep -P "$DEMO_TIMEOUT_PID" | head -n1)
AUTH=$DEMO_AUTH
BOOKS=$DEMO_BOOKS
if [[ -n $OLD_REV ]]; then
	echo "== starting latchkey demo at $OLD_REV on CPU $SERVER_CPU"
	start_demo demo-old "$TMP/bin-old"
	DEMO_OLD_PID=$(pgrep -P "$DEMO_TIMEOUT_PID" | head -n1)
	AUTH_OLD=$DEMO_AUTH
	BOOKS_OLD=$DEMO_BOOKS
fi

echo "== starting loadtarget on CPU $SERVER_CPU (JWKS from $AUTH)"
(
	cd "$TMP/target"
	exec timeout "$BOUND" taskset -c "$SERVER_CPU" "$TMP/bin/loadtarget" \
		-auth-url "$AUTH" -issuer http://localhost:3000 -audience latchkey \
		-db "$TMP/target/books.db" \
		-auth-addr 127.0.0.1:0 -uncached-addr 127.0.0.1:0 -nocheck-addr 127.0.0.1:0 -noauth-addr 127.0.0.1:0 \
		-bare-addr 127.0.0.1:0 ${PG_URL:+-pg-url "$PG_URL" -pg-schema "loadtarget_$$" -pg-addr 127.0.0.1:0} \
		-cpuprofile "$TMP/target.prof"
) >"$TMP/target.out" 2>"$TMP/target.err" &
PIDS+=($!)
TARGET_TIMEOUT_PID=$!
T_AUTH=http://$(addr_from "$TMP/target.out" 's/^loadtarget: auth on //p')
T_UNCACHED=http://$(addr_from "$TMP/target.out" 's/^loadtarget: uncached on //p')
T_NOCHECK=http://$(addr_from "$TMP/target.out" 's/^loadtarget: nocheck on //p')
T_NOAUTH=http://$(addr_from "$TMP/target.out" 's/^loadtarget: noauth on //p')
T_BARE=http://$(addr_from "$TMP/target.out" 's/^loadtarget: bare on //p')
[[ -z $PG_URL ]] || T_PG=http://$(addr_from "$TMP/target.out" 's/^loadtarget: pg on //p')
wait_healthy "$T_AUTH"
# timeout forks loadtarget (taskset execs it).
TARGET_PID=$(pgrep -P "$TARGET_TIMEOUT_PID" | head -n1)
[[ -n $TARGET_PID ]] || die "no loadtarget process under $TARGET_TIMEOUT_PID"

echo "== logging in as anna for an ES256 access token"
token_from() {
	local login
	login=$(curl -fsS -X POST -H 'Content-Type: application/json' \
		-d '{"username":"anna","password":"password123member"}' "$1/login")
	printf '%s' "$login" | sed -n 's/.*"accessToken":"\([^"]*\)".*/\1/p'
}
TOKEN=$(token_from "$AUTH")
[[ -n $TOKEN ]] || die "no access token from $AUTH/login"
if [[ -n $OLD_REV ]]; then
	TOKEN_OLD=$(token_from "$AUTH_OLD")
	[[ -n $TOKEN_OLD ]] || die "no access token from $AUTH_OLD/login"
fi
ALG=$(printf '%s' "${TOKEN%%.*}" | tr '_-' '/+' | { b=$(cat); while ((${#b} % 4)); do b+='='; done; printf '%s' "$b"; } | base64 -d 2>/dev/null | sed -n 's/.*"alg":"\([^"]*\)".*/\1/p')
[[ $ALG == ES256 ]] || die "token alg is '$ALG', want ES256"

# The protected and unprotected routes must answer the same bytes, or the
# comparison is not of the same handler.
body() { curl -fsS "${@:2}" "$1/books"; }
REF=$(body "$T_NOAUTH")
[[ -n $REF ]] || die "empty /books body"
[[ $(body "$T_BARE") == "$REF" ]] || die "bare /books answers a different body"
for u in "$T_AUTH" "$T_UNCACHED" "$BOOKS" ${T_PG:+"$T_PG"}; do
	[[ $(body "$u" -H "Authorization: Bearer $TOKEN") == "$REF" ]] || die "$u/books answers a different body"
done
[[ $(body "$T_NOCHECK" -H "Authorization: Bearer x") == "$REF" ]] || die "nocheck /books answers a different body"
if [[ -n $OLD_REV ]]; then
	[[ $(body "$BOOKS_OLD" -H "Authorization: Bearer $TOKEN_OLD") == "$REF" ]] ||
		die "the books server at $OLD_REV answers a different body"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' "$T_AUTH/books")
[[ $code == 401 ]] || die "$T_AUTH/books without a token answered $code, want 401"

# wrk's latency figures come as 812.00us, 3.45ms or 1.02s; print ms.
to_ms() { awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0;
	if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000; printf "%.2f", n }'; }

declare -A RPS P99 NOTE RATIO
ORDER=()
# median VALUES...: the middle value (the lower middle for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# cpu_ns PID: nanoseconds PID's threads have run so far.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }

declare -A ROUND_RPS ROUND_P99 ROUND_RATIO ROUND_RATIO_BARE RATIO_BARE ROUND_CPU CPU CPU_BARE ROUND_CPU_BARE
# run_wrk NAME URL ROUND PID -- WRK-ARGS: wrk against URL/books, and the CPU
# microseconds per request of PID, the server (LAST_CPU).
run_wrk() {
	local name=$1 url=$2 round=$3 pid=$4 out rps c0 c1 n
	shift 5
	out="$TMP/wrk-$name-$round.txt"
	echo "== round $round, wrk $name: $url/books (loadavg $(cut -d' ' -f1 /proc/loadavg))"
	c0=$(cpu_ns "$pid")
	timeout $((DSECS + 30)) taskset -c "$CLIENT_CPU" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url/books" >"$out"
	c1=$(cpu_ns "$pid")
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
	[[ -n $rps ]] || die "wrk $name: no result; see $out"
	n=$(awk '/ requests in / { print $1 }' "$out")
	LAST_CPU=$(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN { printf "%.2f", (b - a) / n / 1000 }')
	ROUND_CPU[$name]+=" $LAST_CPU"
	ROUND_RPS[$name]+=" $rps"
	ROUND_P99[$name]+=" $(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
	NOTE[$name]+=$(awk '/Non-2xx|Socket errors/ { $1 = $1; printf "%s; ", $0 }' "$out")
	LAST_RPS=$rps
}

AUTHZ="Authorization: Bearer $TOKEN"
WRK_CASES=(bare noauth auth auth-uncached nocheck demo-books)
declare -A WRK_URL=([bare]=$T_BARE [noauth]=$T_NOAUTH [auth]=$T_AUTH [auth-uncached]=$T_UNCACHED [nocheck]=$T_NOCHECK [demo-books]=$BOOKS)
# The process serving each case: the loadtarget serves all but the demos.
declare -A WRK_PID=([bare]=$TARGET_PID [noauth]=$TARGET_PID [auth]=$TARGET_PID [auth-uncached]=$TARGET_PID [nocheck]=$TARGET_PID [demo-books]=$DEMO_PID)
if [[ -n $PG_URL ]]; then
	WRK_CASES+=(pg-books)
	WRK_URL[pg-books]=$T_PG
	WRK_PID[pg-books]=$TARGET_PID
fi
if [[ -n $OLD_REV ]]; then
	WRK_CASES+=(demo-books-old)
	WRK_URL[demo-books-old]=$BOOKS_OLD
	WRK_PID[demo-books-old]=$DEMO_OLD_PID
fi
part books || ROUNDS=0
for round in $(seq 1 "$ROUNDS"); do
	# Each round starts one case further along, so that no case always
	# runs first (just after the previous round's last case, or the
	# start-up) and carries whatever that position costs.
	declare -A THIS_ROUND=() THIS_CPU=()
	n=${#WRK_CASES[@]}
	for ((k = 0; k < n; k++)); do
		name=${WRK_CASES[$(((k + round - 1) % n))]}
		if [[ $name == noauth || $name == bare ]]; then
			run_wrk "$name" "${WRK_URL[$name]}" "$round" "${WRK_PID[$name]}" --
		elif [[ $name == demo-books-old ]]; then
			run_wrk "$name" "${WRK_URL[$name]}" "$round" "${WRK_PID[$name]}" -- -H "Authorization: Bearer $TOKEN_OLD"
		else
			run_wrk "$name" "${WRK_URL[$name]}" "$round" "${WRK_PID[$name]}" -- -H "$AUTHZ"
		fi
		THIS_ROUND[$name]=$LAST_RPS
		THIS_CPU[$name]=$LAST_CPU
	done
	for name in "${WRK_CASES[@]}"; do
		ROUND_RATIO[$name]+=" $(awk -v a="${THIS_ROUND[$name]}" -v b="${THIS_ROUND[noauth]}" 'BEGIN { printf "%.3f", a / b }')"
		ROUND_RATIO_BARE[$name]+=" $(awk -v a="${THIS_ROUND[$name]}" -v b="${THIS_ROUND[bare]}" 'BEGIN { printf "%.3f", a / b }')"
		ROUND_CPU_BARE[$name]+=" $(awk -v a="${THIS_CPU[$name]}" -v b="${THIS_CPU[bare]}" 'BEGIN { printf "%.3f", b / a }')"
	done
	unset THIS_ROUND THIS_CPU
done
((ROUNDS > 0)) && for name in "${WRK_CASES[@]}"; do
	# shellcheck disable=SC2086 # the lists are space-separated numbers
	RPS[$name]=$(median ${ROUND_RPS[$name]})
	# shellcheck disable=SC2086
	P99[$name]=$(median ${ROUND_P99[$name]})
	# shellcheck disable=SC2086
	RATIO[$name]=$(median ${ROUND_RATIO[$name]})
	# shellcheck disable=SC2086
	RATIO_BARE[$name]=$(median ${ROUND_RATIO_BARE[$name]})
	# shellcheck disable=SC2086
	CPU[$name]=$(median ${ROUND_CPU[$name]})
	# shellcheck disable=SC2086
	CPU_BARE[$name]=$(median ${ROUND_CPU_BARE[$name]})
	NOTE[$name]="rounds:${ROUND_RPS[$name]} ratios:${ROUND_RATIO[$name]} vs-bare:${ROUND_RATIO_BARE[$name]} cpu-us:${ROUND_CPU[$name]} cpu-vs-bare:${ROUND_CPU_BARE[$name]} ${NOTE[$name]}"
	ORDER+=("$name")
done

PROFILE_TOP=""
if [[ -n $PROFILE ]] && part books; then
	[[ -n ${WRK_URL[$PROFILE]:-} && $PROFILE != demo-books ]] || die "PROFILE=$PROFILE: not a loadtarget case"
	# timeout forks loadtarget (taskset execs it): signal the child.
	kill -USR1 "$TARGET_PID"
	if [[ $PROFILE == noauth || $PROFILE == bare ]]; then
		run_wrk "$PROFILE" "${WRK_URL[$PROFILE]}" profile "$TARGET_PID" --
	else
		run_wrk "$PROFILE" "${WRK_URL[$PROFILE]}" profile "$TARGET_PID" -- -H "$AUTHZ"
	fi
	kill -USR2 "$TARGET_PID"
	sleep 1
	PROFILE_TOP=$(go tool pprof -top -nodecount 30 "$TMP/bin/loadtarget" "$TMP/target.prof" 2>/dev/null) || PROFILE_TOP="(pprof failed)"
fi

client() {
	local name=$1 cpu=$2 out
	shift 2
	out="$TMP/client-$name.txt"
	echo "== $name (loadavg $(cut -d' ' -f1 /proc/loadavg))"
	timeout $((DSECS + 60)) taskset -c "$cpu" "$TMP/bin/refreshload" -duration "$DURATION" "$@" >"$out" 2>"$TMP/client-$name.err" ||
		die "$name failed: $(cat "$TMP/client-$name.err")"
	local line
	line=$(grep '^RESULT' "$out")
	RPS[$name]=$(sed -n 's/.* rate=\([^ ]*\).*/\1/p' <<<"$line")
	P99[$name]=$(sed -n 's/.* p99_ms=\([^ ]*\).*/\1/p' <<<"$line")
	NOTE[$name]="$(sed -n 's/.* \(errors=[^ ]*\) \(limited=[^ ]*\).*/\1 \2/p' <<<"$line")"
	ORDER+=("$name")
}

part refresh && client refresh "$CLIENT_CPU" -mode refresh -url "$AUTH" -sessions "$SESSIONS"
part login && for n in $LOGIN_WORKERS; do
	client "login-$n" "$CLIENT_CPU" -mode login -url "$AUTH" -workers "$n"
	# argon2id alone, in a process of its own pinned to the server's core
	# while the servers are idle, at the same concurrency: what each login
	# must compute.
	client "argon2id-$n" "$SERVER_CPU" -mode hash -workers "$n"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }

echo
echo "Latchkey load test, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(go version | cut -d' ' -f3)"
echo "server on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU, wrk -t$THREADS -c$CONNECTIONS -d$DURATION x $ROUNDS interleaved rounds (medians), refresh sessions $SESSIONS, login workers: $LOGIN_WORKERS"
echo
printf '%-15s %12s %10s %10s %8s %8s %8s  %s\n' case "req/s" "p99 ms" ratio "vs bare" "cpu us" "cpu/bare" "ratio is vs / notes"
for name in "${ORDER[@]}"; do
	rb=${RATIO_BARE[$name]:-}
	case $name in
	bare | noauth | auth | auth-uncached | nocheck | demo-books | pg-books | demo-books-old) r=${RATIO[$name]} vs="noauth (median of per-round ratios)" ;;
	login-*) r=$(ratio "${RPS[$name]}" "${RPS[argon2id-${name#login-}]}") vs="argon2id-${name#login-}" ;;
	refresh) r=$(ratio "${RPS[refresh]}" 3000) vs="target 3000/s" ;;
	*) r="" vs="" ;;
	esac
	printf '%-15s %12s %10s %10s %8s %8s %8s  %s\n' "$name" "${RPS[$name]}" "${P99[$name]}" "$r" "${rb:--}" "${CPU[$name]:--}" "${CPU_BARE[$name]:--}" "$vs ${NOTE[$name]}"
done
echo
echo "targets: auth/noauth >= 0.85; demo-books/bare >= 0.5 (issue 7, item 7); refresh >= 3000/s;"
echo "          cpu us = the server's CPU per request; cpu/bare = bare's over the case's (medians of rounds)"
echo "          login-N/argon2id-N >= 1/1.1 = 0.909 (login time <= 1.1x hash time)"
echo "cases: bare = net/http writing the list's bytes from memory (the ceiling); pg-books = auth on a PostgreSQL store;"
echo "       noauth = GET /books without bearer middleware; auth = production wiring (JWKS, cached verify);"
echo "       auth-uncached = same, verified-token cache off (ES256 check every request); nocheck = books.New with an"
echo "       accept-all verifier; demo-books = the latchkey binary's books server (demo). All use one ES256 token."
[[ -z $OLD_REV ]] || echo "       demo-books-old = the books server of latchkey demo built at $OLD_REV (its own ES256 token)."
if [[ -n $PROFILE_TOP ]]; then
	echo
	echo "CPU profile of loadtarget during one more wrk run of $PROFILE (req/s $LAST_RPS):"
	echo "$PROFILE_TOP"
fi
