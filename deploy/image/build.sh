#!/usr/bin/env bash
# Build the operator image from the Dockerfile with buildah, without a Docker engine or a
# registry: `make image`. Docker users build the same Dockerfile with `docker build .`.
#
#   deploy/image/build.sh [TAG]          default TAG: localhost/ftmoe-operator:dev
#
# Steps: install buildah and debootstrap from Debian when missing (needs root, as on the
# project's machines); make a Debian bookworm base image with debootstrap once (no image
# registry is reachable here, so python:3.11-slim cannot be pulled), cached in buildah's
# storage as localhost/ftmoe-base:bookworm; build the Dockerfile on it with torch from
# PyPI (the CPU-only index is not reachable here); print the image's size.
#
# Environment: FTMOE_IMAGE_BASE=IMAGE builds on another base (e.g. python:3.11-slim where
# a registry is reachable); FTMOE_TORCH_INDEX_URL=URL picks torch's index (empty: PyPI);
# FTMOE_REBUILD_BASE=1 makes the base again.
set -euo pipefail
cd "$(dirname "$0")/../.."

TAG=${1:-localhost/ftmoe-operator:dev}
BASE_TAG=localhost/ftmoe-base:bookworm
BASE=${FTMOE_IMAGE_BASE:-$BASE_TAG}
TORCH_INDEX_URL=${FTMOE_TORCH_INDEX_URL-}
# buildah picks its storage driver: the one this storage already uses, else overlay where
# the kernel allows it (as root on ext4 or xfs), else vfs. Under vfs every layer and every
# working container is a whole copy of the rootfs (gigabytes with torch), so it needs far
# more disk (not measured; the check below asks for twice overlay's). Chroot isolation
# needs no user namespaces.
BUILDAH=(buildah)
# Free disk the dependencies' stage needs, in GiB, measured (README, "The image"): its
# biggest layer while it commits, its working copy and two compressed copies in flight.
DEPS_DISK_GIB=${FTMOE_IMAGE_DISK_GIB:-14}
started=$(date +%s)

say() { printf '==> %s\n' "$*"; }
elapsed() { echo "$(($(date +%s) - started))s"; }

missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
    if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
        echo "error: ${missing[*]} missing; install them (Debian/Ubuntu: apt-get install ${missing[*]}) or build with Docker: docker build -t $TAG ." >&2
        exit 1
    fi
    say "installing ${missing[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ $BASE == "$BASE_TAG" ]] && { [[ ${FTMOE_REBUILD_BASE:-} == 1 ]] || ! "${BUILDAH[@]}" inspect --type image "$BASE_TAG" >/dev/null 2>&1; }; then
    say "making the base image $BASE_TAG with debootstrap (Debian bookworm, python3 3.11; 1-4 minutes)"
    rootfs=$(mktemp -d /var/tmp/ftmoe-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "${FTMOE_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$rootfs.log" 2>&1 ||
        { tail -20 "$rootfs.log" >&2; echo "error: debootstrap failed (full log: $rootfs.log)" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs.log"
    ctr=$("${BUILDAH[@]}" from scratch)
    mnt=$("${BUILDAH[@]}" mount "$ctr")
    cp -a "$rootfs"/. "$mnt"/
    "${BUILDAH[@]}" umount "$ctr" >/dev/null
    "${BUILDAH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd /bin/bash "$ctr"
    "${BUILDAH[@]}" commit --quiet --rm "$ctr" "$BASE_TAG" >/dev/null
    say "base image ready ($(elapsed))"
fi

# Where the network sits behind a TLS-inspecting proxy (as on the project's machines), the
# host's CA bundle and pip settings are lent to the RUN steps, read-only; no layer keeps them.
lend=()
for f in /etc/ssl/certs/ca-certificates.crt /etc/pip.conf; do
    [[ -f $f ]] && lend+=(--volume "$f:$f:ro")
done

# The dependencies' stage is built on its own and kept, named by what it is made from, so
# that a code change rebuilds only the small runtime stage (the Dockerfile's DEPS argument).
key=$({ cat Dockerfile pyproject.toml deploy/image/layers.py; echo "$BASE $TORCH_INDEX_URL"; "${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$BASE" 2>/dev/null; } | sha256sum | cut -c1-12)
DEPS_TAG=localhost/ftmoe-deps:$key
args=(--isolation chroot "${lend[@]}" --build-arg "BASE=$BASE" --build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
if ! "${BUILDAH[@]}" inspect --type image "$DEPS_TAG" >/dev/null 2>&1; then
    driver=$("${BUILDAH[@]}" info --format '{{.store.GraphDriverName}}')
    store=$("${BUILDAH[@]}" info --format '{{.store.GraphRoot}}')
    need=$DEPS_DISK_GIB
    [[ $driver == vfs ]] && need=$((need * 2))
    for dir in "$store" "${TMPDIR:-/var/tmp}"; do
        free=$(($(df -Pk "$dir" | awk 'NR==2 {print $4}') / 1048576))
        if ((free < need)); then
            echo "error: building the dependencies' stage needs about $need GiB free under $dir ($driver storage); $free GiB is free there." >&2
            echo "       Free some space (an older image: buildah rmi IMAGE), or set FTMOE_IMAGE_DISK_GIB=N to check for N GiB instead (0: no check)." >&2
            [[ $driver == vfs ]] && echo "       An empty storage takes overlay where the kernel allows it, which needs far less." >&2
            exit 1
        fi
    done
    say "building the dependencies' stage $DEPS_TAG ($driver storage; torch from ${TORCH_INDEX_URL:-PyPI}; about 5 minutes, again only when the Dockerfile, pyproject.toml or deploy/image/layers.py changes)"
    # --layers: one layer per RUN step, as the Dockerfile splits torch (deploy/image/layers.py);
    # compressed while committing, so the copies in flight are a third of the layer's size.
    "${BUILDAH[@]}" bud "${args[@]}" --layers --disable-compression=false --target deps --tag "$DEPS_TAG" --file Dockerfile .
    # older dependency stages only take space (each is gigabytes)
    "${BUILDAH[@]}" images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/ftmoe-deps:' | grep -vx "$DEPS_TAG" |
        xargs -r "${BUILDAH[@]}" rmi >/dev/null 2>&1 || true
else
    say "dependencies' stage $DEPS_TAG is cached"
fi

say "building $TAG on $DEPS_TAG"
"${BUILDAH[@]}" bud "${args[@]}" --build-arg "DEPS=$DEPS_TAG" --tag "$TAG" --file Dockerfile .
"${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true # the image this one replaced, untagged now

say "built $TAG in $(elapsed); its size (uncompressed, as \`docker images\` shows it):"
"${BUILDAH[@]}" images --format '{{.Name}}:{{.Tag}}  {{.Size}}' "$TAG"
