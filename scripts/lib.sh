# Shared helpers for scripts/*.sh. Source it; it defines functions only.

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# as_root runs a command as root (directly, or through sudo).
as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		log "need root to run: $*"
		return 1
	fi
}

# package_installed PKG: true if the Debian package is installed.
package_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# ensure_packages PKG...: installs the Debian packages that are missing, with
# apt-get, non-interactively. It runs apt-get update only when the install
# fails without it (no package lists yet, or stale ones). Fails loudly.
ensure_packages() {
	local missing=() p
	for p in "$@"; do
		package_installed "$p" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get to install them"
	log "installing Debian packages: ${missing[*]}"
	local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends
		-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
	if ! as_root "${apt[@]}" install "${missing[@]}" </dev/null >&2; then
		log "apt-get install failed; running apt-get update and retrying"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update </dev/null >&2 ||
			die "apt-get update failed"
		as_root "${apt[@]}" install "${missing[@]}" </dev/null >&2 ||
			die "could not install Debian packages: ${missing[*]}"
	fi
	for p in "${missing[@]}"; do
		package_installed "$p" || die "package $p still not installed after apt-get install"
	done
}

# ensure_commands CMD=PKG...: for each command missing from PATH, installs
# the Debian package that provides it (ensure_packages); fails if the command
# is still missing afterwards.
ensure_commands() {
	local pair pkgs=()
	for pair in "$@"; do
		command -v "${pair%%=*}" >/dev/null 2>&1 || pkgs+=("${pair#*=}")
	done
	[ ${#pkgs[@]} -eq 0 ] && return 0
	ensure_packages "${pkgs[@]}"
	for pair in "$@"; do
		command -v "${pair%%=*}" >/dev/null 2>&1 ||
			die "command ${pair%%=*} still missing after installing package ${pair#*=}"
	done
}
