#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# pointreleases.sh [--update] [LINE...]: does patches/<line>/series apply to every Debian point
# release of each supported line the mirror offers? (make kmod-pointreleases; not in make test.)
#
# For each line (default: every patches/<line>/ directory), the versions of linux-source-<line> are
# what apt-cache madison lists with the host's apt configuration (bookworm, bookworm-security) and
# with the rig's own trixie view (rig/trixie-apt.sh: trixie, trixie-backports). Each .deb is
# downloaded once into $RIG_CACHE/pointreleases/debs/ (not debs/, where rig/fetch.sh takes the
# first linux-source-<line>_*.deb it finds as the one of its kernel), its tarball taken out into a
# scratch directory, and `build.sh --apply-only` extracts what build.sh needs from it and applies
# the series exactly as a build does (no fuzz); the scratch directory is removed after each version.
# Nothing is compiled: the releases the rig has headers for are built by make kmod.
#
# --update refreshes the package lists first (apt-get update, and the rig's trixie lists).
# Prints a table "line version suite result" with the failing patch and hunks under a failure;
# exits 1 when any version fails. A version older than patches/<line>/min-version is listed as refused
# (build.sh exits 3 for it, naming what to install), not as a failure.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
top=$(cd "$here/.." && pwd)
RIG_CACHE=${RIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lvs-rig}

log() { echo "pointreleases: $*" >&2; }

update=0
if [ "${1:-}" = --update ]; then
	update=1
	shift
fi
lines=("$@")
if [ "${#lines[@]}" = 0 ]; then
	mapfile -t lines < <(cd "$top/patches" && ls -d [0-9]*/ | tr -d / | sort -V)
fi

# shellcheck source=rig/trixie-apt.sh
. "$top/rig/trixie-apt.sh"
if [ "$update" = 1 ]; then
	log "apt-get update"
	apt-get update -qq >&2
	trixie_update
elif [ ! -f "$tapt/sources.list" ] || ! ls "$tapt"/lists/*_Packages* >/dev/null 2>&1; then
	trixie_update
fi

debs=$RIG_CACHE/pointreleases/debs
mkdir -p "$debs"
work=$(mktemp -d "${TMPDIR:-/tmp}/pointreleases.XXXXXX")
trap 'rm -rf "$work"' EXIT

# versions LINE: "version suite apt" lines, apt being host or trixie; a version both views list
# is the same file and is checked once.
versions() {
	local pkg=linux-source-$1
	{
		apt-cache madison "$pkg" 2>/dev/null | awk -F' *[|] *' '{split($3, a, " "); sub(/\/.*/, "", a[2]); print $2, a[2], "host"}'
		apt-cache "${trixie_opts[@]}" madison "$pkg" 2>/dev/null |
			awk -F' *[|] *' '{split($3, a, " "); sub(/\/.*/, "", a[2]); print $2, a[2], "trixie"}'
	} | sort -u -k1,1 | sort -V -k1,1
}

results=()
fail=0
for line in "${lines[@]}"; do
	[ -d "$top/patches/$line" ] || { log "no patches/$line"; exit 2; }
	n=0
	while read -r ver suite view; do
		n=$((n + 1))
		pkg=linux-source-$line
		deb=$debs/${pkg}_${ver}_all.deb
		if [ ! -f "$deb" ]; then
			log "downloading $pkg $ver ($suite)"
			if [ "$view" = trixie ]; then
				(cd "$debs" && apt-get "${trixie_opts[@]}" -o APT::Sandbox::User=root download -qq "$pkg=$ver" >&2)
			else
				(cd "$debs" && apt-get -o APT::Sandbox::User=root download -qq "$pkg=$ver" >&2)
			fi
			[ -f "$deb" ] || { log "apt-get download $pkg=$ver made no $deb"; exit 1; }
		fi
		rm -rf "$work/v"
		mkdir -p "$work/v"
		dpkg-deb --fsys-tarfile "$deb" | tar -xf - -C "$work/v" "./usr/src/$pkg.tar.xz"
		log "checking $pkg $ver"
		if out=$(TARBALL="$work/v/usr/src/$pkg.tar.xz" BUILD_DIR="$work/v/build" \
			"$here/scripts/build.sh" --apply-only "$ver" 2>&1); then
			results+=("$line $ver $suite applies")
		elif [ $? = 3 ]; then
			# older than patches/<line>/min-version: build.sh refuses it with what to install
			results+=("$line $ver $suite refused (older than patches/$line/min-version)")
		else
			fail=1
			results+=("$line $ver $suite FAILS")
			while IFS= read -r l; do results+=("  $l"); done < <(echo "$out" | sed -n '/^kmod\[[^]]*\]: extracting /d; s/^kmod\[[^]]*\]: //p; s/^  /  /p')
		fi
		rm -rf "$work/v"
	done < <(versions "$line")
	if [ "$n" = 0 ]; then
		fail=1
		results+=("$line - - FAILS: the mirror lists no linux-source-$line")
	fi
done

{
	printf '%-6s %-22s %-20s %s\n' line version suite result
	for r in "${results[@]}"; do
		case "$r" in
		"  "*) echo "$r" ;;
		*)
			read -r a b c d <<<"$r"
			printf '%-6s %-22s %-20s %s\n' "$a" "$b" "$c" "$d"
			;;
		esac
	done
}
exit "$fail"
