#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Run the project's VM tests: every Go package with files tagged `//go:build vmtest` is compiled
# into a static test binary, and each package runs in a fresh VM per kernel and module set.
# Each test's output is printed on the host; the last line is "N passed, N failed".
#
# usage: rig/vmtest.sh [--kernels "6.1 6.12"] (7.3 too: not a default) [--modules "stock ours"]
#                      [--lane test|bench] [--run REGEX] [--count N] [PKG...]
#
# Without PKG, every package of the lane (default: test) runs: a package's lane is set in its
# vmtest.conf (`lane=bench` for the benchmarks of `make bench`; default: test).
# A package may hold a file `vmtest.conf` with lines `modules=stock ours` (which module sets it
# needs; default: both), `skip=KERNEL/MODULES ...` (pairs a whole-lane run leaves out for CI's
# budget; naming the package runs them), `timeout=SECONDS`, `mem=MiB` and `tcg=single` (2 vCPUs under
# single-threaded TCG, for tests that patch kernel text while the other vCPU runs it; see
# rig/vm.sh), `perf=1` (Linux's profiler in the VM: rig/vm.sh --perf) and `alone=1` (no other
# VM shares its CPUs: see Scheduling below). Kernel
# "6.12-debug" is the sanitizer kernel (rig/debug-kernel.sh); there every timeout is multiplied
# by $RIG_DEBUG_SLOWDOWN (default 3). RIG_TCG=multi|single overrides tcg=. RIG_VM_JOBS=N runs
# up to N VMs side by side (default: 2 on 2 or more host CPUs).
# Module set "ours" needs kmod/out/<release>/ (make -C kmod); it is never skipped silently: if it
# was asked for and is missing, the run fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
cd "$top"

kernels="6.1 6.12" modsets="stock ours" runre= count= lane=test pkgs=()
while [ $# -gt 0 ]; do
	case "$1" in
	--kernels) kernels=$2; shift 2 ;;
	--modules) modsets=$2; shift 2 ;;
	--lane) lane=$2; shift 2 ;;
	--run) runre=$2; shift 2 ;;
	--count) count=$2; shift 2 ;;	# run each test N times in its VM (-test.count): loop a flake
	-*) echo "rig/vmtest.sh: unknown option $1" >&2; exit 2 ;;
	*) pkgs+=("$1"); shift ;;
	esac
done
case "$lane" in test|bench) ;; *) echo "rig/vmtest.sh: --lane must be test or bench" >&2; exit 2 ;; esac
whole_lane=0
if [ ${#pkgs[@]} -eq 0 ]; then
	whole_lane=1
	# out/ holds build trees (make deb stages a copy of the repository there)
	for p in $(grep -rl --exclude-dir=out --exclude-dir=.git --include='*_test.go' '^//go:build vmtest' . |
		xargs -r -n1 dirname | sort -u); do
		l=$(sed -n 's/^lane=//p' "$p/vmtest.conf" 2>/dev/null || true)
		[ "${l:-test}" != "$lane" ] || pkgs+=("$p")
	done
fi
[ ${#pkgs[@]} -gt 0 ] || { echo "rig/vmtest.sh: no vmtest packages found" >&2; exit 1; }

"$here/fetch.sh" >/dev/null

pl=$(mktemp -d "${TMPDIR:-/tmp}/rig-payload.XXXXXX")
trap 'rm -rf "$pl" "$pl".out.* "$pl".res.* "$pl".print' EXIT
mkdir -p "$pl/opt/fullnat/bin" "$pl/opt/fullnat/tests" "$pl/opt/fullnat/run" "$pl/opt/fullnat/src"

export CGO_ENABLED=0
echo "vmtest: building binaries" >&2
# RIG_CMDS narrows the commands built (default: all of ./cmd/...).
if [ -d cmd ]; then
	go build -trimpath -tags urfave_cli_no_docs -o "$pl/opt/fullnat/bin/" ${RIG_CMDS:-./cmd/...}
fi
# The repository's files (tracked and new, not ignored) so tests find their testdata.
# (Files deleted in the work tree but still tracked are left out.)
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ ! -f "$f" ] || printf '%s\n' "$f"; done |
	tar -cf - -T - | tar -xf - -C "$pl/opt/fullnat/src"

declare -A conf_modules conf_timeout conf_mem conf_tcg conf_skip conf_alone conf_perf
for p in "${pkgs[@]}"; do
	p=./${p#./}
	name=$(echo "${p#./}" | tr '/' '_')
	go test -c -tags vmtest -trimpath -o "$pl/opt/fullnat/tests/$name.test" "$p"
	# -test.timeout: what is left of the VM's timeout (rig/init's RIG_TEST_TIMEOUT), so a hang
	# ends in Go's goroutine dump before the VM is killed.
	args='-test.v -test.timeout ${RIG_TEST_TIMEOUT:-1800}s'
	[ -z "$runre" ] || args="$args -test.run '$runre'"
	[ -z "$count" ] || args="$args -test.count $count"
	cat >"$pl/opt/fullnat/run/$name" <<EOF
#!/bin/sh
cd /opt/fullnat/src/${p#./} && exec /opt/fullnat/tests/$name.test $args
EOF
	chmod +x "$pl/opt/fullnat/run/$name"
	conf_modules[$p]="stock ours"
	conf_timeout[$p]=900
	conf_mem[$p]=2048
	conf_tcg[$p]=multi
	conf_skip[$p]=
	conf_alone[$p]=0
	conf_perf[$p]=0
	if [ -f "$p/vmtest.conf" ]; then
		while IFS='=' read -r k v; do
			case "$k" in
			modules) conf_modules[$p]=$v ;;
			timeout) conf_timeout[$p]=$v ;;
			mem) conf_mem[$p]=$v ;;
			tcg) conf_tcg[$p]=$v ;;
			skip) conf_skip[$p]=$v ;;
			alone) conf_alone[$p]=$v ;;
			perf) conf_perf[$p]=$v ;;
			lane | '' | '#'*) ;;
			*) echo "rig/vmtest.sh: $p/vmtest.conf: unknown key '$k'" >&2; exit 2 ;;
			esac
		done <"$p/vmtest.conf"
	fi
done

# failures LOG: each failed Go test with the last lines it logged (file_test.go:N: ...), the
# rig's own verdict lines (rig: FAIL: ...) and a panic or timeout's first line.
failures() {
	awk '
	/^=== (RUN|CONT)/ { cur = $3; n[cur] = 0 }
	/^ *[A-Za-z0-9_]+\.go:[0-9]+: / && cur != "" { buf[cur, n[cur]++ % 6] = $0 }
	/^ *--- FAIL: / {
		t = $3; print "--- FAIL: " t
		m = n[t] < 6 ? n[t] : 6
		for (i = n[t] - m; i < n[t]; i++) print "  " substr(buf[t, i % 6], 1, 200)
	}
	/^rig: FAIL|^panic: |^FAIL$/ { print substr($0, 1, 200) }
	' "$1" | head -n 60
}

# The runs, in order: kernel, module set, package.
jobs=()
skipped=()
for k in $kernels; do
	for m in $modsets; do
		for p in "${pkgs[@]}"; do
			p=./${p#./}
			case " ${conf_modules[$p]} " in *" $m "*) ;; *) continue ;; esac
			if [ "$whole_lane" = 1 ]; then
				case " ${conf_skip[$p]} " in *" $k/$m "*)
					skipped+=("---- $k/$m $p (not in a whole-lane run: vmtest.conf skip=)")
					continue ;;
				esac
			fi
			jobs+=("$k $m $p")
		done
	done
done

# run1 I: run job I; its output goes to $pl.out.I, its verdict line to $pl.res.I (PASS/FAIL line,
# then what failed).
run1() {
	local i=$1 niceness=${2:-} k m p name to start out=$pl.out.$1 pre=()
	[ -z "$niceness" ] || pre=(nice -n "$niceness")
	read -r k m p <<<"${jobs[$i]}"
	local perfopt=()
	[ "${conf_perf[$p]}" != 1 ] || perfopt=(--perf)
	name=$(echo "${p#./}" | tr '/' '_')
	echo "=== vmtest: $p on $k with $m modules" >>"$out"
	start=$(date +%s)
	to=${conf_timeout[$p]}
	case "$k" in *-debug) to=$((to * ${RIG_DEBUG_SLOWDOWN:-3})) ;; esac
	[ -z "$niceness" ] || echo "=== vmtest: at nice $niceness, beside a timing-sensitive run" >>"$out"
	if "${pre[@]}" "$here/vm.sh" --kernel "$k" --modules "$m" --payload "$pl" --run "$name" \
		--timeout "$to" --mem "${conf_mem[$p]}" --tcg "${RIG_TCG:-${conf_tcg[$p]}}" "${perfopt[@]}" >>"$out" 2>&1; then
		echo "PASS $k/$m $p ($(($(date +%s) - start)) s)" >"$pl.res.$i"
	else
		{
			echo "FAIL $k/$m $p ($(($(date +%s) - start)) s)"
			# What failed, for the summary (CI shows only the end of the output).
			why=$(failures "$out")
			[ -n "$why" ] || why=$(tail -n 3 "$out")
			sed 's/^/     /' <<<"$why"
		} >"$pl.res.$i"
	fi
}

# Scheduling. Packages whose vmtest.conf says alone=1 (timing: timers, floods, failover,
# benchmarks) must not share their CPUs. One with tcg=single runs its vCPUs on one host thread:
# with 2 CPUs or more those run one after another (the "lane") while the other packages run
# one at a time beside them at nice 19, so the lane's threads take whatever CPU they want (its
# QEMU needs a second CPU now and then: pinned to one, SYNPROXY's tests took twice as long);
# then up to $RIG_VM_JOBS at a time once the lane is done (default: 2 on a host with 2 CPUs
# or more: a TCG guest spends much of a test waiting on timers and the network, so two share 2
# cores well). Packages with alone=1 and multi-threaded TCG run last, with no other VM beside
# them. Each run's output is printed whole when it ends.
vmjobs=${RIG_VM_JOBS:-$(($(nproc) >= 2 ? 2 : 1))}
[ "$vmjobs" -ge 1 ] || vmjobs=1
lane=() shared=() solo=()
for i in "${!jobs[@]}"; do
	read -r k m p <<<"${jobs[$i]}"
	if [ "${conf_alone[$p]}" != 1 ]; then
		shared+=("$i")
	elif [ "$vmjobs" -ge 2 ] && [ "$(nproc)" -ge 2 ] && [ "${RIG_TCG:-${conf_tcg[$p]}}" = single ]; then
		lane+=("$i")
	else
		solo+=("$i")
	fi
done
show() { flock "$pl.print" cat "$pl.out.$1"; }
lanepid=
if [ ${#lane[@]} -gt 0 ]; then
	( for i in "${lane[@]}"; do run1 "$i"; show "$i"; done ) &
	lanepid=$!
fi
declare -A running=()
reap() { # wait for a running job (or the lane) to end, print it
	local pid i
	wait -n -p pid "${!running[@]}" $lanepid || true
	if [ -n "$lanepid" ] && [ "$pid" = "$lanepid" ]; then
		lanepid=
		return
	fi
	i=${running[$pid]}
	unset "running[$pid]"
	show "$i"
}
for i in "${shared[@]}"; do
	if [ "$vmjobs" = 1 ]; then
		run1 "$i"
		show "$i"
		continue
	fi
	while :; do
		if [ -n "$lanepid" ]; then cap=1; else cap=$vmjobs; fi
		[ ${#running[@]} -ge "$cap" ] || break
		reap
	done
	if [ -n "$lanepid" ]; then run1 "$i" 19 & else run1 "$i" & fi
	running[$!]=$i
done
while [ ${#running[@]} -gt 0 ] || [ -n "$lanepid" ]; do reap; done
for i in "${solo[@]}"; do
	# streamed: a long run shows its progress
	: >"$pl.out.$i"
	run1 "$i" &
	pid=$!
	tail -n +1 --pid=$pid -f "$pl.out.$i" 2>/dev/null || true
	wait "$pid" || true
done

passed=0 failed=0 results=()
for i in "${!jobs[@]}"; do
	case "$(head -n 1 "$pl.res.$i" 2>/dev/null)" in
	PASS*) passed=$((passed + 1)) ;;
	*) failed=$((failed + 1)) ;;
	esac
	[ -s "$pl.res.$i" ] || echo "FAIL ${jobs[$i]} (no verdict)" >"$pl.res.$i"
	while IFS= read -r l; do results+=("$l"); done <"$pl.res.$i"
done
results+=("${skipped[@]}")
echo
echo "vmtest summary:"
printf '  %s\n' "${results[@]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
