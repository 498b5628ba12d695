#!/usr/bin/env bash
# Scale measurements of issue 7, item 9, on loopback, in one run so that
# every ratio compares numbers taken minutes apart on the same machine:
#
#   1. refresh/s and login/s over HTTP, `latchkey serve` on SQLite vs on
#      PostgreSQL, interleaved in rounds (each round in a rotated order),
#      with argon2id's own rate at the same concurrency (login is bound by
#      the hash it computes);
#   2. the auth server's memory under load at CONNECTIONS (256) concurrent
#      clients on each backend: VmRSS sampled during the load, VmHWM (the
#      peak since start) after it, VmRSS again after the server has idled;
#   3. books verify/s (GET /books with a valid token, `latchkey books`)
#      while 1 and while 3 auth replicas run on one PostgreSQL database,
#      interleaved: the books server never calls the auth server per
#      request, so the two should match.
#
# Needs: Go, curl, taskset (util-linux), wrk (apt-get install wrk), psql
# (apt-get install postgresql-client), and a PostgreSQL server on 127.0.0.1
# or localhost that PG_URL names, whose user may create databases: the run
# creates a database of its own (scale_PID) and drops it at the end.
#
# Servers run pinned to CPU $SERVER_CPU and the load clients to CPU
# $CLIENT_CPU; PostgreSQL itself is not pinned. Everything listens on
# 127.0.0.1 on ports the kernel picks, in a temporary directory removed at
# the end; every process started here is killed on exit and bounded in
# time (timeout), and every load loop stops after DURATION.
#
# Settings (environment):
#   PG_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable
#   DURATION=10s      each measured case
#   ROUNDS=3          rounds of part 1 and of part 3
#   SESSIONS=32       part 1 refresh: concurrent sessions, one client goroutine each
#   LOGIN_WORKERS=4   part 1 login: concurrent clients (and argon2id goroutines)
#   CONNECTIONS=256   part 2: concurrent refresh sessions, then login clients
#   BOOKS_CONNECTIONS=32  part 3: wrk -c
#   SETTLE=3          part 3: seconds to wait after starting or stopping replicas
#   PARTS="1 2 3"     which parts to run
#   SERVER_CPU=0 CLIENT_CPU=1
#   SERVER_GOMEMLIMIT=    the auth servers' GOMEMLIMIT (empty: none); the
#                     clients and the argon2id reference run without one
#   KEEP=1            keep the temporary directory (logs)
#
# Usage: PG_URL=... scripts/scale.sh    (about 6 minutes with the defaults)
set -euo pipefail

PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
SESSIONS=${SESSIONS:-32}
LOGIN_WORKERS=${LOGIN_WORKERS:-4}
CONNECTIONS=${CONNECTIONS:-256}
BOOKS_CONNECTIONS=${BOOKS_CONNECTIONS:-32}
SETTLE=${SETTLE:-3}
PARTS=${PARTS:-1 2 3}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
KEEP=${KEEP:-0}
SERVER_GOMEMLIMIT=${SERVER_GOMEMLIMIT:-}
unset GOMEMLIMIT # the clients and the argon2id reference run without one

die() { echo "scale.sh: $*" >&2; exit 1; }
part() { [[ " $PARTS " == *" $1 "* ]]; }

for c in go curl taskset wrk psql; do
	command -v "$c" >/dev/null 2>&1 || die "$c not found (see the comment at the top for packages)"
done
case $PG_URL in
postgres://*@127.0.0.1[:/]* | postgres://*@localhost[:/]* | postgresql://*@127.0.0.1[:/]* | postgresql://*@localhost[:/]*) ;;
*) die "PG_URL must name a server on 127.0.0.1 or localhost" ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-scale.XXXXXX")
DB=scale_$$
# The same server and parameters, another database: replace the path.
base=${PG_URL%%\?*}
query=${PG_URL#"$base"}
AUTH_PG_URL=${base%/*}/$DB$query
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || echo "scale.sh: could not drop database $DB" >&2
	if [[ $KEEP == 1 ]]; then echo "scale.sh: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

secs() {
	case $1 in
	*ms) echo 1 ;; *s) echo "${1%s}" ;; *m) echo $((${1%m} * 60)) ;; *) echo "$1" ;;
	esac
}
DSECS=$(secs "$DURATION")
BOUND=$((DSECS * (7 * ROUNDS + 12) + 300)) # no server outlives the whole run

echo "== building into $TMP/bin"
(cd "$ROOT" && go build -o "$TMP/bin/" ./cmd/latchkey ./scripts/refreshload)
psql -q "$PG_URL" -c "CREATE DATABASE $DB" >/dev/null || die "cannot create database $DB on $PG_URL"

USER_NAME=anna
USER_PASS=password123member

# start NAME DBURL: starts `latchkey serve` pinned to the server CPU on a
# port the kernel picks, waits until it answers, and sets URL_NAME and
# PID_NAME. The first start on a database creates the user anna.
declare -A URL PID
start() {
	local name=$1 dburl=$2 dir="$TMP/$1" i addr=""
	mkdir -p "$dir"
	(
		cd "$dir"
		exec env -u ACCESS_TOKEN_SECRET -u TOKEN_SECRET GOMEMLIMIT="$SERVER_GOMEMLIMIT" \
			LATCHKEY_ADDR=127.0.0.1:0 LATCHKEY_DATABASE_URL="$dburl" \
			LATCHKEY_ISSUER=http://localhost:3000 LATCHKEY_AUDIENCE=latchkey \
			LATCHKEY_ADMIN_USERNAME=$USER_NAME LATCHKEY_ADMIN_PASSWORD=$USER_PASS \
			LATCHKEY_LOG_LEVEL=info \
			timeout "$BOUND" taskset -c "$SERVER_CPU" "$TMP/bin/latchkey" serve
	) >"$dir/out" 2>"$dir/err" &
	PID[$name]=$!
	PIDS+=($!)
	for i in $(seq 1 150); do
		addr=$(sed -n 's/.*msg=listening server=auth addr=\([^ ]*\).*/\1/p' "$dir/err" | head -n1)
		[[ -n $addr ]] && curl -fsS -o /dev/null "http://$addr/healthz" 2>/dev/null && break
		addr=""
		sleep 0.1
	done
	[[ -n $addr ]] || die "$name did not start: $(tail -n 5 "$dir/err")"
	URL[$name]=http://$addr
}
stop() {
	kill "${PID[$1]}" 2>/dev/null || true
	wait "${PID[$1]}" 2>/dev/null || true
}

# The server's own pid: timeout and taskset exec, but timeout forks.
server_pid() { pgrep -P "${PID[$1]}" -f "latchkey serve" | head -n1 || true; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

declare -A RES
# client NAME CPU ARGS...: one refreshload run; RES[NAME] = "rate p99 errors limited".
client() {
	local name=$1 cpu=$2 out="$TMP/client-$1.txt" line
	shift 2
	echo "== $name (loadavg $(cut -d' ' -f1 /proc/loadavg))"
	timeout $((DSECS + 120)) taskset -c "$cpu" "$TMP/bin/refreshload" -duration "$DURATION" "$@" >"$out" 2>"$out.err" ||
		die "$name failed: $(cat "$out.err")"
	line=$(grep '^RESULT' "$out")
	RES[$name]="$(sed -n 's/.* rate=\([^ ]*\) .* p99_ms=\([^ ]*\) errors=\([^ ]*\) limited=\([^ ]*\).*/\1 \2 \3 \4/p' <<<"$line")"
}
field() { awk -v i="$2" '{ print $i }' <<<"$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }

REPORT=$TMP/report.txt
{
	echo "Latchkey scale run, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(go version | cut -d' ' -f3)"
	echo "servers on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU, PostgreSQL unpinned; $DURATION per case; auth servers' GOMEMLIMIT ${SERVER_GOMEMLIMIT:-unset}; loadavg at start $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$REPORT"

if part 1; then
	start sqlite "sqlite:$TMP/sqlite/auth.db"
	start pg "$AUTH_PG_URL"
	declare -A R
	cases=(refresh-sqlite refresh-pg login-sqlite login-pg argon2id)
	for round in $(seq 1 "$ROUNDS"); do
		n=${#cases[@]}
		for ((k = 0; k < n; k++)); do
			c=${cases[$(((k + round - 1) % n))]}
			case $c in
			refresh-*) client "$c-$round" "$CLIENT_CPU" -mode refresh -url "${URL[${c#refresh-}]}" -sessions "$SESSIONS" ;;
			login-*) client "$c-$round" "$CLIENT_CPU" -mode login -url "${URL[${c#login-}]}" -workers "$LOGIN_WORKERS" ;;
			argon2id) client "$c-$round" "$SERVER_CPU" -mode hash -workers "$LOGIN_WORKERS" ;;
			esac
			R[$c]+=" $(field "${RES[$c-$round]}" 1)"
			R[$c-p99]+=" $(field "${RES[$c-$round]}" 2)"
			R[$c-notes]+=" e$(field "${RES[$c-$round]}" 3)/l$(field "${RES[$c-$round]}" 4)"
		done
		R[pg-over-sqlite-refresh]+=" $(ratio "$(field "${RES[refresh-pg-$round]}" 1)" "$(field "${RES[refresh-sqlite-$round]}" 1)")"
		R[pg-over-sqlite-login]+=" $(ratio "$(field "${RES[login-pg-$round]}" 1)" "$(field "${RES[login-sqlite-$round]}" 1)")"
		R[login-sqlite-over-hash]+=" $(ratio "$(field "${RES[login-sqlite-$round]}" 1)" "$(field "${RES[argon2id-$round]}" 1)")"
		R[login-pg-over-hash]+=" $(ratio "$(field "${RES[login-pg-$round]}" 1)" "$(field "${RES[argon2id-$round]}" 1)")"
	done
	stop sqlite
	stop pg
	{
		echo
		echo "1. refresh and login over HTTP (refresh: $SESSIONS sessions; login and argon2id: $LOGIN_WORKERS workers; $ROUNDS rounds, rotated)"
		printf '%-16s %10s %10s  %s\n' case "median/s" "p99 ms" "rounds /s; errors/limited per round"
		for c in "${cases[@]}"; do
			# shellcheck disable=SC2086 # space-separated numbers
			printf '%-16s %10s %10s  %s;%s\n' "$c" "$(median ${R[$c]})" "$(median ${R[$c-p99]})" "${R[$c]}" "${R[$c-notes]}"
		done
		for r in pg-over-sqlite-refresh pg-over-sqlite-login login-sqlite-over-hash login-pg-over-hash; do
			# shellcheck disable=SC2086
			printf '%-24s median %s  (rounds:%s)\n' "$r" "$(median ${R[$r]})" "${R[$r]}"
		done
	} >>"$REPORT"
fi

if part 2; then
	echo >>"$REPORT"
	echo "2. auth server memory, $CONNECTIONS concurrent clients (MiB; goal: under 64 MiB)" >>"$REPORT"
	printf '%-8s %8s %14s %12s %14s %12s %10s  %s\n' backend "idle RSS" "refresh RSS max" "HWM" "login RSS max" "HWM" "RSS after" "refresh/s login/s (errors/limited)" >>"$REPORT"
	for be in sqlite pg; do
		if [[ $be == sqlite ]]; then dburl="sqlite:$TMP/mem-sqlite/auth.db"; else dburl=$AUTH_PG_URL; fi
		start "mem-$be" "$dburl"
		spid=$(server_pid "mem-$be")
		[[ -n $spid ]] || die "no server process under ${PID[mem-$be]}"
		idle=$(status_kb "$spid" VmRSS)
		row=("$be" "$(awk -v k="$idle" 'BEGIN { printf "%.1f", k / 1024 }')")
		rates=""
		for mode in refresh login; do
			peak=0
			(
				while kill -0 "$spid" 2>/dev/null; do
					status_kb "$spid" VmRSS
					sleep 0.2
				done
			) >"$TMP/rss-$be-$mode.txt" &
			sampler=$!
			if [[ $mode == refresh ]]; then
				client "mem-$be-refresh" "$CLIENT_CPU" -mode refresh -url "${URL[mem-$be]}" -sessions "$CONNECTIONS" -source-ips 64
			else
				client "mem-$be-login" "$CLIENT_CPU" -mode login -url "${URL[mem-$be]}" -workers "$CONNECTIONS" -source-ips 64
			fi
			kill "$sampler" 2>/dev/null || true
			wait "$sampler" 2>/dev/null || true
			peak=$(sort -n "$TMP/rss-$be-$mode.txt" | tail -n1)
			hwm=$(status_kb "$spid" VmHWM)
			row+=("$(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }')" "$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')")
			rates+=" $(field "${RES[mem-$be-$mode]}" 1) (e$(field "${RES[mem-$be-$mode]}" 3)/l$(field "${RES[mem-$be-$mode]}" 4))"
		done
		sleep 10
		after=$(status_kb "$spid" VmRSS)
		row+=("$(awk -v k="$after" 'BEGIN { printf "%.1f", k / 1024 }')")
		printf '%-8s %8s %14s %12s %14s %12s %10s %s\n' "${row[@]}" "$rates" >>"$REPORT"
		stop "mem-$be"
	done
	echo "(HWM is the peak since the server started, so the login column includes the refresh load before it; RSS after: 10 s after the load)" >>"$REPORT"
fi

if part 3; then
	# Three replicas on one database; the books server follows replica 1.
	start rep1 "$AUTH_PG_URL"
	mkdir -p "$TMP/books"
	(
		cd "$TMP/books"
		exec env -u ACCESS_TOKEN_SECRET -u TOKEN_SECRET \
			LATCHKEY_BOOKS_ADDR=127.0.0.1:0 LATCHKEY_AUTH_URL="${URL[rep1]}" \
			LATCHKEY_BOOKS_DATABASE_URL="sqlite:$TMP/books/books.db" \
			LATCHKEY_ISSUER=http://localhost:3000 LATCHKEY_AUDIENCE=latchkey LATCHKEY_LOG_LEVEL=info \
			timeout "$BOUND" taskset -c "$SERVER_CPU" "$TMP/bin/latchkey" books
	) >"$TMP/books/out" 2>"$TMP/books/err" &
	PIDS+=($!)
	BOOKS=""
	for i in $(seq 1 150); do
		a=$(sed -n 's/.*msg=listening server=books addr=\([^ ]*\).*/\1/p' "$TMP/books/err" | head -n1)
		if [[ -n $a ]] && curl -fsS -o /dev/null "http://$a/readyz" 2>/dev/null; then BOOKS=http://$a; break; fi
		sleep 0.1
	done
	[[ -n $BOOKS ]] || die "books server did not become ready: $(tail -n 5 "$TMP/books/err")"
	LOGIN=$(curl -fsS -X POST -H 'Content-Type: application/json' \
		-d "{\"username\":\"$USER_NAME\",\"password\":\"$USER_PASS\"}" "${URL[rep1]}/login")
	TOKEN=$(printf '%s' "$LOGIN" | sed -n 's/.*"accessToken":"\([^"]*\)".*/\1/p')
	[[ -n $TOKEN ]] || die "no access token: $LOGIN"
	# The tutorials' three books, as the demo seeds them (anna is an admin here).
	for b in '{"author":"Chinua Achebe","country":"Nigeria","language":"English","pages":209,"title":"Things Fall Apart","year":1958}' \
		'{"author":"Hans Christian Andersen","country":"Denmark","language":"Danish","pages":784,"title":"Fairy tales","year":1836}' \
		'{"author":"Dante Alighieri","country":"Italy","language":"Italian","pages":928,"title":"The Divine Comedy","year":1315}'; do
		curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$b" "$BOOKS/books" ||
			die "POST /books failed"
	done
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BOOKS/books")
	[[ $code == 200 ]] || die "GET /books with the token answered $code"
	declare -A V
	wrk_books() {
		local out="$TMP/wrk-books-$1.txt"
		echo "== books verify, $1 (loadavg $(cut -d' ' -f1 /proc/loadavg))" >&2
		timeout $((DSECS + 30)) taskset -c "$CLIENT_CPU" wrk -t1 -c"$BOOKS_CONNECTIONS" -d"$DURATION" --latency \
			-H "Authorization: Bearer $TOKEN" "$BOOKS/books" >"$out"
		awk '/^Requests\/sec:/ { print $2 }' "$out"
	}
	for round in $(seq 1 "$ROUNDS"); do
		# Rotate which count comes first.
		order=(1 3)
		((round % 2 == 0)) && order=(3 1)
		for n in "${order[@]}"; do
			if [[ $n == 3 ]]; then
				start rep2 "$AUTH_PG_URL"
				start rep3 "$AUTH_PG_URL"
				for r in rep1 rep2 rep3; do
					jwks=$(curl -fsS "${URL[$r]}/.well-known/jwks.json")
					[[ $jwks == "$(curl -fsS "${URL[rep1]}/.well-known/jwks.json")" ]] || die "$r publishes another JWKS"
				done
				sleep "$SETTLE" # measure replicas that run, not ones starting
			fi
			rps=$(wrk_books "$n-replicas-$round")
			! grep -q 'Non-2xx' "$TMP/wrk-books-$n-replicas-$round.txt" || die "wrk: non-2xx answers; see $TMP/wrk-books-$n-replicas-$round.txt"
			[[ -n $rps ]] || die "wrk $n-replicas-$round: no result"
			V[$n]+=" $rps"
			V[$n-$round]=$rps
			if [[ $n == 3 ]]; then
				stop rep2
				stop rep3
				sleep "$SETTLE"
			fi
		done
		V[ratio]+=" $(ratio "${V[3-$round]}" "${V[1-$round]}")"
	done
	{
		echo
		echo "3. books verify/s (GET /books, valid ES256 token, wrk -c$BOOKS_CONNECTIONS), auth replicas on one PostgreSQL database"
		# shellcheck disable=SC2086
		echo "1 replica:  median $(median ${V[1]})/s  (rounds:${V[1]})"
		# shellcheck disable=SC2086
		echo "3 replicas: median $(median ${V[3]})/s  (rounds:${V[3]})"
		# shellcheck disable=SC2086
		echo "3/1 per round:${V[ratio]}  median $(median ${V[ratio]})"
	} >>"$REPORT"
fi

echo
cat "$REPORT"
