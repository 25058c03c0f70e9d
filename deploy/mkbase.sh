#!/usr/bin/env bash
# mkbase.sh builds the local base images that the Dockerfile starts FROM.
#
# This machine has a Docker engine but no image registry, so nothing can be
# pulled: every image is built here from Debian packages.
#
#   raftmq-base/debian:bookworm   Debian bookworm minbase root file system made
#                                 by debootstrap from the mirror apt uses here,
#                                 imported with `docker import`.
#   raftmq-base/builder:bookworm  + build-essential, pkg-config, libzmq3-dev and
#                                 the host's Go toolchain (see "Go toolchain").
#   raftmq-base/runtime:bookworm  + libzmq5, ca-certificates.
#
# Idempotent: an image that exists is kept unless --force is given, or the
# recipe that made it (the function below, hashed into label raftmq.recipe)
# changed; the builder also when the host's Go (raftmq.go.version) or CA bundle
# changed, and the other two when the base was rebuilt.
#
# Go toolchain: Debian's golang is older than go.mod's `go` line. We copy the
# host's GOROOT (default /usr/local/go, the toolchain this project's tests and
# CI run with) into the builder image through a build context. It needs no
# network, gives the image exactly the compiler the tests were run with, and
# is checked: the build fails when that Go is older than go.mod requires. The
# alternative, fetching golang.org/toolchain from the module proxy, downloads
# ~70 MB per build and pins a second copy of a version we already have.
#
# Usage: deploy/mkbase.sh [--force] [--mirror URL] [--goroot DIR]
# Env:   RAFTMQ_BASE_IMAGE, RAFTMQ_BUILDER_IMAGE, RAFTMQ_RUNTIME_IMAGE (names),
#        RAFTMQ_DEBIAN_MIRROR, GOROOT_HOST, RAFTMQ_CA_BUNDLE.
#
# TLS: the builder trusts the host's CA bundle (RAFTMQ_CA_BUNDLE, else
# SSL_CERT_FILE, else /etc/ssl/certs/ca-certificates.crt) for `go mod download`:
# where the module proxy is reached through a TLS-inspecting gateway, that
# gateway's CA is in the host's bundle and not in Debian's. It goes into the
# builder only, never into the runtime image; the builder is rebuilt (cheaply,
# from the layer cache) when the bundle changes (label raftmq.ca.sha256).
set -euo pipefail

suite=bookworm
base_image=${RAFTMQ_BASE_IMAGE:-raftmq-base/debian:$suite}
builder_image=${RAFTMQ_BUILDER_IMAGE:-raftmq-base/builder:$suite}
runtime_image=${RAFTMQ_RUNTIME_IMAGE:-raftmq-base/runtime:$suite}
mirror=${RAFTMQ_DEBIAN_MIRROR:-}
goroot=${GOROOT_HOST:-}
# The CA bundle the builder trusts for the Go module proxy: the host's own.
ca_bundle=${RAFTMQ_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
force=0

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
started=$SECONDS

say() { printf '[mkbase %3ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
die() { printf 'mkbase: error: %s\n' "$*" >&2; exit 1; }

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

while (($#)); do
	case $1 in
	--force) force=1 ;;
	--mirror) mirror=${2:?--mirror needs a URL}; shift ;;
	--mirror=*) mirror=${1#*=} ;;
	--goroot) goroot=${2:?--goroot needs a directory}; shift ;;
	--goroot=*) goroot=${1#*=} ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown argument '$1' (try --help)" ;;
	esac
	shift
done

# --- prerequisites ----------------------------------------------------------

command -v docker >/dev/null ||
	die "docker is not installed: install Docker Engine (Debian: apt-get install docker.io)"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
	die "no Docker engine answers (is dockerd running, and may $(id -un) use /var/run/docker.sock?)"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# first_debian_uri prints the first URI of apt's sources that serves SUITE:
# deb822 *.sources files and one-line sources.list entries are both read.
first_debian_uri() {
	local want=$1 f
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -r $f ]] || continue
		awk -v want="$want" '
			function flush() { if (uri != "" && suites ~ "(^| )" want "( |$)" && types ~ /(^| )deb( |$)/) { print uri; found = 1; exit } uri = suites = types = "" }
			/^[[:space:]]*$/ { flush(); next }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { $1 = ""; suites = $0; sub(/^ /, "", suites) }
			/^Types:/ { $1 = ""; types = $0; sub(/^ /, "", types) }
			END { if (!found) flush() }' "$f" | head -n1
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -r $f ]] || continue
		awk -v want="$want" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == want) { print $i; exit } }' "$f"
	done
}

if [[ -z $mirror ]]; then
	mirror=$(first_debian_uri "$suite" | head -n1)
	[[ -n $mirror ]] || mirror=http://deb.debian.org/debian
fi
security_mirror=$(first_debian_uri "$suite-security" | head -n1)
[[ -n $security_mirror ]] || security_mirror=${mirror%/debian}/debian-security

if [[ -z $goroot ]]; then
	if command -v go >/dev/null; then goroot=$(go env GOROOT); else goroot=/usr/local/go; fi
fi

# --- base: debootstrap + docker import ---------------------------------------

# show_phases prints debootstrap's phases, not its ~300 per-package lines.
show_phases() {
	grep --line-buffered -v -E '^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) [^ ]+( [0-9][^ ]*|\.\.\.)$' |
		sed -u 's/^/    /'
}

build_base() {
	if ! command -v debootstrap >/dev/null; then
		if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
			say "debootstrap is missing: installing it with apt-get"
			if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }; then
				die "could not install debootstrap with apt-get"
			fi
		else
			die "debootstrap is missing: install it as root (apt-get install debootstrap) and run again"
		fi
	fi
	[[ $(id -u) == 0 ]] || die "debootstrap needs root to build $base_image: run mkbase.sh as root"

	local work
	work=$(mktemp -d "${TMPDIR:-/tmp}/raftmq-mkbase.XXXXXX")
	# shellcheck disable=SC2064 # expand $work now
	trap "rm -rf --one-file-system '$work'" EXIT
	local rootfs=$work/rootfs

	say "debootstrap --variant=minbase $suite from $mirror (takes a few minutes)"
	if ! debootstrap --variant=minbase --components=main --merged-usr \
		"$suite" "$rootfs" "$mirror" 2>&1 | tee "$work/debootstrap.log" | show_phases; then
		tail -n 30 "$work/debootstrap.log" >&2
		[[ -f $rootfs/debootstrap/debootstrap.log ]] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
		die "debootstrap failed (log above)"
	fi

	say "configuring the root file system"
	# The same archives apt uses on this host, updates and security included.
	cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<-EOF
		Types: deb
		URIs: $mirror
		Suites: $suite $suite-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: $security_mirror
		Suites: $suite-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	rm -f "$rootfs/etc/apt/sources.list"
	# Container hygiene, as Debian's official images do: no caches, no docs,
	# no recommends, no services started by package scripts.
	cat >"$rootfs/etc/apt/apt.conf.d/90raftmq-container" <<-'EOF'
		APT::Install-Recommends "false";
		APT::Install-Suggests "false";
		Acquire::Languages "none";
		DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		Dir::Cache::pkgcache "";
		Dir::Cache::srcpkgcache "";
	EOF
	cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90raftmq-nodoc" <<-'EOF'
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/man/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/locale/*
	EOF
	printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
	chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
		"$rootfs"/var/log/*.log "$rootfs"/debootstrap "$rootfs"/usr/share/doc/*/changelog* \
		"$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
	find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
	find "$rootfs/usr/share/doc" -depth -type d -empty -delete
	: >"$rootfs/etc/hostname"
	: >"$rootfs/etc/resolv.conf"

	say "docker import -> $base_image"
	tar --numeric-owner --xattrs -C "$rootfs" \
		--exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
		docker import \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			--change 'ENV LANG=C.UTF-8' \
			--change 'CMD ["bash"]' \
			--change "LABEL raftmq.recipe=$(recipe_sum build_base)" \
			--message "debootstrap --variant=minbase $suite $mirror" \
			- "$base_image" >/dev/null
	rm -rf --one-file-system "$work"
	trap - EXIT
}

# --- builder and runtime: docker build from the base --------------------------

# go_version_of prints "1.26.8" for a GOROOT.
go_version_of() { "$1/bin/go" env GOVERSION | sed 's/^go//'; }

# version_ge A B: A >= B for dotted versions.
version_ge() { [[ $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1) == "$2" ]]; }

# docker_build TAG DIR builds DIR/Dockerfile, indenting the build's output.
docker_build() {
	if ! docker build -t "$1" "$2" 2>&1 | sed -u 's/^/    /'; then
		die "docker build of $1 failed (output above)"
	fi
}

build_builder() {
	[[ -x $goroot/bin/go ]] || die "no Go toolchain at $goroot (set GOROOT_HOST or --goroot)"
	local gover want work
	gover=$(go_version_of "$goroot")
	want=$(awk '$1 == "go" { print $2; exit }' "$repo_dir/go.mod")
	[[ -z $want ]] || version_ge "$gover" "$want" ||
		die "Go $gover at $goroot is older than go.mod's 'go $want': install Go $want or newer"

	work=$(mktemp -d "${TMPDIR:-/tmp}/raftmq-mkbase.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf --one-file-system '$work'" EXIT
	say "packing Go $gover from $goroot (without its test/ and api/ trees)"
	tar -C "$goroot" --exclude=./test --exclude=./api -cf "$work/go.tar" .
	cp "$ca_bundle" "$work/host-ca-bundle.crt"
	cat >"$work/Dockerfile" <<-EOF
		FROM $base_image
		RUN apt-get update \\
		 && DEBIAN_FRONTEND=noninteractive apt-get -y upgrade \\
		 && DEBIAN_FRONTEND=noninteractive apt-get install -y build-essential pkg-config libzmq3-dev ca-certificates git \\
		 && rm -rf /var/lib/apt/lists/*
		ADD go.tar /usr/local/go/
		COPY host-ca-bundle.crt /etc/ssl/certs/host-ca-bundle.crt
		ENV PATH=/usr/local/go/bin:/root/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
		    GOTOOLCHAIN=local CGO_ENABLED=1 SSL_CERT_FILE=/etc/ssl/certs/host-ca-bundle.crt
		# Warm the build cache with the standard library as the Dockerfile
		# compiles it (-trimpath, cgo), so an image build compiles only
		# raftmq and its modules.
		RUN go version && pkg-config --modversion libzmq && go build -trimpath std
		LABEL raftmq.go.version=$gover raftmq.ca.sha256=$(ca_sum) raftmq.recipe=$(recipe_sum build_builder)
	EOF
	say "docker build -> $builder_image (apt-get install build-essential pkg-config libzmq3-dev)"
	docker_build "$builder_image" "$work"
	rm -rf --one-file-system "$work"
	trap - EXIT
}

# image_label IMAGE KEY prints a label of IMAGE (empty when unset).
image_label() {
	docker image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}

# recipe_sum FUNC hashes the shell function that builds an image, so an image
# made by an older mkbase.sh is rebuilt.
recipe_sum() { declare -f "$1" | sha256sum | cut -c1-64; }

ca_sum() { sha256sum <"$ca_bundle" | cut -c1-64; }

build_runtime() {
	local work
	work=$(mktemp -d "${TMPDIR:-/tmp}/raftmq-mkbase.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf --one-file-system '$work'" EXIT
	cat >"$work/Dockerfile" <<-EOF
		FROM $base_image
		RUN apt-get update \\
		 && DEBIAN_FRONTEND=noninteractive apt-get -y upgrade \\
		 && DEBIAN_FRONTEND=noninteractive apt-get install -y libzmq5 ca-certificates \\
		 && rm -rf /var/lib/apt/lists/*
		LABEL raftmq.recipe=$(recipe_sum build_runtime)
	EOF
	say "docker build -> $runtime_image (apt-get install libzmq5 ca-certificates)"
	docker_build "$runtime_image" "$work"
	rm -rf --one-file-system "$work"
	trap - EXIT
}

# --- main ---------------------------------------------------------------------

# stale IMAGE FUNC prints why IMAGE must be (re)built by FUNC, or nothing: it is
# missing, --force was given, or FUNC's recipe changed since the image was made.
stale() {
	if ((force)); then echo "--force"; return; fi
	image_exists "$1" || { echo "missing"; return; }
	[[ $(image_label "$1" raftmq.recipe) == "$(recipe_sum "$2")" ]] || echo "its recipe in mkbase.sh changed"
}

rebuilt=0
why=$(stale "$base_image" build_base)
if [[ -n $why ]]; then
	say "$base_image: building ($why)"
	build_base
	rebuilt=1
else
	say "$base_image exists (use --force to rebuild)"
fi

[[ -r $ca_bundle ]] || die "CA bundle $ca_bundle not readable (set RAFTMQ_CA_BUNDLE)"
host_go=$(go_version_of "$goroot" 2>/dev/null || true)
why=$(stale "$builder_image" build_builder)
if [[ -z $why ]] && ((rebuilt)); then why="the base was rebuilt"; fi
if [[ -z $why && $(image_label "$builder_image" raftmq.go.version) != "$host_go" ]]; then
	why="it has Go $(image_label "$builder_image" raftmq.go.version), the host Go $host_go"
fi
if [[ -z $why && $(image_label "$builder_image" raftmq.ca.sha256) != "$(ca_sum)" ]]; then
	why="$ca_bundle changed"
fi
if [[ -n $why ]]; then
	say "$builder_image: building ($why)"
	build_builder
else
	say "$builder_image exists with Go $host_go"
fi

why=$(stale "$runtime_image" build_runtime)
if [[ -z $why ]] && ((rebuilt)); then why="the base was rebuilt"; fi
if [[ -n $why ]]; then
	say "$runtime_image: building ($why)"
	build_runtime
else
	say "$runtime_image exists"
fi

say "done:"
docker image ls --format '    {{.Repository}}:{{.Tag}}  {{.Size}}' |
	grep -F -e "$base_image" -e "$builder_image" -e "$runtime_image" >&2 || true
