#!/usr/bin/env bash
# Makes local stand-ins for the two public base images the Dockerfiles name, from Debian's
# packages with mmdebstrap, and imports them into a buildah storage under the same names, so
# `buildah bud --pull=never` builds docker/*.Dockerfile unchanged on a machine that reaches only
# the package registries:
#   debian:bookworm-slim                  minbase (Priority: required + apt; without the usrmerge
#                                         converter and its perl, which the image lacks), docs/man/locales
#                                         excluded by dpkg as in the slim image
#   gcr.io/distroless/cc-debian12:nonroot extracted libc6, libgcc-s1, libstdc++6, libgomp1,
#                                         libssl3, base-files, netbase, tzdata, ca-certificates;
#                                         no shell, no dpkg, users root/nobody/nonroot (65532);
#                                         like distroless, one control file per package in
#                                         /var/lib/dpkg/status.d/ (what SBOM scanners read)
# Each base is a tarball in CACHE (reused while it exists: delete it to refresh from Debian) and
# an image in CACHE/storage (re-imported when missing). Idempotent. Needs root.
# Usage: bash .ci/image-bases.sh CACHE
set -euo pipefail

cache="${1:?usage: image-bases.sh CACHE}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
storage=(--root "$cache/storage" --runroot "$cache/run" --storage-driver vfs)

die() {
    echo "image-bases: ERROR: $*" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap --mode=root, buildah storage)"
for c in mmdebstrap buildah; do
    command -v "$c" >/dev/null 2>&1 || die "$c missing: run bash .ci/install-image-tools.sh"
done

# The same suites the machine's apt uses: the point release plus security updates.
mirrors=(
    "deb http://deb.debian.org/debian bookworm main"
    "deb http://deb.debian.org/debian bookworm-updates main"
    "deb http://deb.debian.org/debian-security bookworm-security main"
)
# What debian:bookworm-slim's dpkg configuration drops (docs but their copyright files, man
# pages, locales). Written into the image, so a later `apt-get install` inside a build drops them too.
slim_excludes=(
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/groff/*'
    --dpkgopt='path-exclude=/usr/share/lintian/*'
    --dpkgopt='path-exclude=/usr/share/linda/*'
)

make_bookworm_slim() {
    local out="$1"
    mmdebstrap --quiet --mode=root --variant=minbase --format=tar "${slim_excludes[@]}" \
        --aptopt='Acquire::Languages "none"' \
        --customize-hook='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get -y -qq purge usrmerge perl libperl5.36 perl-modules-5.36 libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl libgdbm-compat4 libgdbm6 >/dev/null' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log' \
        bookworm "$out.part" "${mirrors[@]}"
    mv "$out.part" "$out"
}

make_distroless_cc() {
    local out="$1"
    # extract: the packages' files without maintainer scripts or dpkg, as distroless is built.
    # The hooks (extract hooks: the extract variant runs no customize hooks) do what
    # ca-certificates' postinst and distroless' passwd/group files would.
    mmdebstrap --quiet --mode=root --variant=extract --format=tar \
        --include=base-files,netbase,tzdata,libc6,libgcc-s1,libstdc++6,libgomp1,libssl3,ca-certificates \
        --extract-hook='cat "$1"/usr/share/ca-certificates/mozilla/*.crt > "$1"/etc/ssl/certs/ca-certificates.crt' \
        --extract-hook='mkdir -p "$1"/var/lib/dpkg/status.d && for deb in "$1"/var/cache/apt/archives/*.deb; do dpkg-deb -f "$deb" > "$1/var/lib/dpkg/status.d/$(dpkg-deb -f "$deb" Package)"; done' \
        --extract-hook='printf "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n" > "$1"/etc/passwd' \
        --extract-hook='printf "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n" > "$1"/etc/group' \
        --extract-hook='mkdir -p "$1"/tmp "$1"/home/nonroot "$1"/root && chmod 1777 "$1"/tmp && chown 65532:65532 "$1"/home/nonroot && chmod 0700 "$1"/root' \
        --extract-hook='rm -rf "$1"/usr/share/doc "$1"/usr/share/man "$1"/usr/share/info "$1"/usr/share/locale "$1"/usr/share/lintian "$1"/var/cache/apt "$1"/var/lib/apt "$1"/var/log/apt' \
        bookworm "$out.part" "${mirrors[@]}"
    mv "$out.part" "$out"
}

# import TARBALL NAME CONFIG...: an image NAME whose only layer is TARBALL.
import() {
    local tarball="$1" name="$2"
    shift 2
    if buildah "${storage[@]}" inspect --type image "$name" >/dev/null 2>&1; then
        echo "image-bases: $name already in $cache/storage"
        return
    fi
    local ctr
    ctr="$(buildah "${storage[@]}" from --pull=never scratch)"
    buildah "${storage[@]}" add "$ctr" "$tarball" / >/dev/null
    buildah "${storage[@]}" config "$@" "$ctr"
    buildah "${storage[@]}" commit --quiet --rm "$ctr" "$name" >/dev/null
    echo "image-bases: imported $name ($(du -m "$tarball" | cut -f1) MiB tarball)"
}

for base in bookworm-slim distroless-cc; do
    if [ -s "$cache/$base.tar" ]; then
        echo "image-bases: $base.tar cached"
        continue
    fi
    echo "image-bases: making $base.tar with mmdebstrap"
    start=$SECONDS
    "make_${base//-/_}" "$cache/$base.tar"
    echo "image-bases: $base.tar made in $((SECONDS - start)) s"
done

import "$cache/bookworm-slim.tar" debian:bookworm-slim \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd bash
import "$cache/distroless-cc.tar" gcr.io/distroless/cc-debian12:nonroot \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --user 65532 --workingdir /home/nonroot
