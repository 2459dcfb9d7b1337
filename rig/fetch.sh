#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Fetch everything the kernel test rig needs, without touching the host's /boot:
#   - host tools (QEMU, busybox-static, cpio, kmod, iproute2, ethtool, Debian's ipvsadm, keepalived
#     and iptables as the reference userland that goes into the VM, FRR (zebra, bgpd, vtysh) for the
#     VM tests' routers, linux-perf for the benchmarks' profiles; the compiler, patch, and git and
#     perl for checkpatch);
#   - Debian's 6.1 and 6.12 cloud kernels, their headers and kbuild, and linux-source,
#     downloaded with `apt-get download` and unpacked with `dpkg-deb -x` under $RIG_CACHE;
#   - the newest 7.x cloud kernel of trixie-backports (same files; from 7.x Debian splits the
#     image into linux-binary-REL, vmlinuz under usr/lib/modules/REL/, and linux-modules-REL),
#     resolved and downloaded through an apt configuration of the rig's own ($RIG_CACHE/apt:
#     its own sources list and package lists; the host's apt configuration is never changed).
#
# A second run costs nothing: every step is skipped when its result is already there.
# Prints one line per kernel: "<line> <release> <root dir>".
set -euo pipefail

RIG_CACHE=${RIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lvs-rig}
mkdir -p "$RIG_CACHE/debs" "$RIG_CACHE/kernels"

log() { echo "rig/fetch: $*" >&2; }

host_pkgs=(qemu-system-x86 busybox-static cpio kmod iproute2 xz-utils zstd ipvsadm keepalived ethtool iptables nginx haproxy frr linux-perf
	gcc libc6-dev make bc libelf-dev flex bison patch git perl)

need_install=()
for p in "${host_pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_install+=("$p")
done
apt_updated=0
apt_update() {
	if [ "$apt_updated" = 0 ]; then
		log "apt-get update"
		apt-get update -qq >&2
		apt_updated=1
	fi
}
if [ "${#need_install[@]}" -gt 0 ]; then
	apt_update
	log "installing ${need_install[*]}"
	# Never start the services these packages ship (keepalived, nginx, haproxy, frr): we only want
	# the binaries.
	policy=/usr/sbin/policy-rc.d
	had_policy=0
	[ -e "$policy" ] && had_policy=1
	[ "$had_policy" = 1 ] || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_install[@]}" >&2
	[ "$had_policy" = 1 ] || rm -f "$policy"
fi

# newest_pkg PATTERN: the newest package name matching an extended regexp.
newest_pkg() {
	apt-cache pkgnames 2>/dev/null | grep -E "$1" | sort -V | tail -n 1
}

# The rig's own apt view of Debian trixie + trixie-backports (trixie_opts, trixie_update).
# shellcheck source=rig/trixie-apt.sh
. "$(dirname "$0")/trixie-apt.sh"

# fetch_debs [--trixie] DIR PKG...: download PKGs (once) and unpack them into DIR.
fetch_debs() {
	local trixie=0
	if [ "$1" = --trixie ]; then
		trixie=1
		shift
	fi
	local dir=$1
	shift
	mkdir -p "$dir"
	local p deb
	for p in "$@"; do
		deb=$(ls "$RIG_CACHE/debs/${p}_"*.deb 2>/dev/null | head -n 1 || true)
		if [ -z "$deb" ]; then
			log "downloading $p"
			if [ "$trixie" = 1 ]; then
				trixie_update
				(cd "$RIG_CACHE/debs" && apt-get "${trixie_opts[@]}" download -qq "$p" >&2)
			else
				apt_update
				(cd "$RIG_CACHE/debs" && apt-get download -qq "$p" >&2)
			fi
			deb=$(ls "$RIG_CACHE/debs/${p}_"*.deb | head -n 1)
		fi
		if [ ! -e "$dir/.unpacked-$p" ]; then
			log "unpacking $(basename "$deb")"
			dpkg-deb -x "$deb" "$dir"
			touch "$dir/.unpacked-$p"
		fi
	done
}

# Resolve the package names once and remember them, so a cached run needs no apt at all.
names=$RIG_CACHE/kernels/names
if [ ! -s "$names" ] || [ -n "${RIG_REFRESH:-}" ]; then
	apt_update
	img61=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-6\.1\./ {print $2; exit}')
	rel61=${img61#linux-image-}
	img612=$(newest_pkg '^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$')
	rel612=${img612#linux-image-}
	rel612=${rel612%-unsigned}
	[ -n "$rel61" ] && [ -n "$rel612" ] || { log "cannot resolve kernel packages"; exit 1; }
	printf '6.1 %s\n6.12 %s\n' "$rel61" "$rel612" >"$names.tmp"
	mv "$names.tmp" "$names"
fi

# The 7.x line in a file of its own: the names file above is read by every rig sharing the
# cache's kernels/ directory, and an older fetch.sh would not know how to fetch a third line.
names7=$RIG_CACHE/kernels/names-7
if [ ! -s "$names7" ] || [ -n "${RIG_REFRESH:-}" ]; then
	trixie_update
	img7=$(apt-cache "${trixie_opts[@]}" pkgnames 2>/dev/null |
		grep -E '^linux-image-7\.[0-9]+\.[0-9]+\+deb13-cloud-amd64$' | sort -V | tail -n 1)
	rel7=${img7#linux-image-}
	[ -n "$rel7" ] || { log "cannot resolve the 7.x kernel packages"; exit 1; }
	line7=$(echo "$rel7" | cut -d. -f1-2)
	printf '%s %s\n' "$line7" "$rel7" >"$names7.tmp"
	mv "$names7.tmp" "$names7"
fi

while read -r line rel; do
	root=$RIG_CACHE/kernels/$rel
	common=${rel%-cloud-amd64}-common
	# 6.1: linux-kbuild-6.1; 6.12 backports: linux-kbuild-6.12.117+deb12
	case "$line" in
	6.1) kbuild=linux-kbuild-6.1 img=linux-image-$rel ;;
	*) kbuild=linux-kbuild-${rel%-cloud-amd64} img=linux-image-$rel-unsigned ;;
	esac
	fetch_debs "$root" "$img" "linux-headers-$rel" "linux-headers-$common" "$kbuild" "linux-source-$line"
	echo "$line $rel $root"
done <"$names"

# 7.x: linux-image-REL is a metapackage over linux-binary-REL (vmlinuz, unsigned variant here as
# for 6.12), linux-modules-REL and linux-base-REL (config, System.map). The image lives under
# usr/lib/modules/REL/; boot/vmlinuz-REL and lib/modules/REL are made links to it, so the rest of
# the rig sees the same layout as for 6.x.
while read -r line rel; do
	root=$RIG_CACHE/kernels/$rel
	fetch_debs --trixie "$root" "linux-binary-unsigned-$rel" "linux-modules-$rel" "linux-base-$rel" \
		"linux-headers-$rel" "linux-headers-${rel%-cloud-amd64}-common" "linux-kbuild-${rel%-cloud-amd64}" \
		"linux-source-$line"
	if [ ! -e "$root/boot/vmlinuz-$rel" ]; then
		mkdir -p "$root/boot"
		v=$(find "$root/usr/lib/modules/$rel" "$root/boot" -maxdepth 1 -name 'vmlinuz*' 2>/dev/null | head -n 1)
		[ -n "$v" ] || { log "no vmlinuz in the $rel packages"; exit 1; }
		ln -sfn "$(realpath --relative-to="$root/boot" "$v")" "$root/boot/vmlinuz-$rel"
	fi
	if [ ! -e "$root/lib/modules/$rel" ] && [ -d "$root/usr/lib/modules/$rel" ]; then
		mkdir -p "$root/lib/modules"
		ln -sfn "../../usr/lib/modules/$rel" "$root/lib/modules/$rel"
	fi
	echo "$line $rel $root"
done <"$names7"
