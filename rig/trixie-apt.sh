# SPDX-License-Identifier: Apache-2.0
#
# Sourced by rig/fetch.sh and kmod/scripts/pointreleases.sh (which define log and set RIG_CACHE).
# The rig's own apt view of Debian trixie + trixie-backports (for the 7.x line), on the mirror
# the host uses. Only `apt-cache` and `apt-get download` run with it.
tapt=$RIG_CACHE/apt
trixie_opts=(-o "Dir::Etc::sourcelist=$tapt/sources.list" -o Dir::Etc::sourceparts=-
	-o "Dir::State::Lists=$tapt/lists" -o "Dir::Cache=$tapt/cache")
trixie_updated=0
trixie_update() {
	[ "$trixie_updated" = 0 ] || return 0
	mkdir -p "$tapt/lists/partial" "$tapt/cache/archives/partial"
	local mirror
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -oE 'https?://[^ ]*/debian/?( |$)' | head -n 1 | tr -d ' ' || true)
	mirror=${mirror:-http://deb.debian.org/debian/}
	mirror=${mirror%/}
	printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
		"$mirror" trixie "$mirror" trixie-backports >"$tapt/sources.list"
	log "apt-get update (trixie, trixie-backports: $mirror)"
	apt-get "${trixie_opts[@]}" update -qq >&2
	trixie_updated=1
}
