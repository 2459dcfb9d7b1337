# SPDX-License-Identifier: Apache-2.0
#
# pkg/mirror.sh, sourced: $mirror, the Debian mirror the host's apt uses (deb.debian.org when none
# is found), and $security, its security archive. The scripts that make rootfses use it; the
# host's apt configuration is only read.
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
	grep -oE 'https?://[^ ]*/debian/?( |$)' | head -n 1 | tr -d ' ' || true)
mirror=${mirror:-http://deb.debian.org/debian/}
mirror=${mirror%/}
security=${mirror%/debian}/debian-security
