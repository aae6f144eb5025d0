#!/usr/bin/env python3
"""Estimates what `apt-get install --no-install-recommends PACKAGES` adds to debian:bookworm-slim.

Reads the package lists of the machine it runs on (a Debian bookworm host or container with
`apt-get update` done), resolves Depends and Pre-Depends (no Recommends, first alternative unless
one is already installed), subtracts what the slim image already has (the Priority: required
packages, apt, and what they need) and sums the Installed-Size fields. Used for docs/images.md:

    python3 docker/apt-installed-size.py bind9-dnsutils ca-certificates curl git iproute2 jq \
        netcat-openbsd procps tini

Installed-Size counts documentation and man pages, which the slim image's dpkg configuration
drops, so the result is an upper bound.
"""

import subprocess
import sys


def read_packages():
    """Every amd64/all package stanza from `apt-cache dumpavail`, by name, and the providers of
    each virtual package."""
    dump = subprocess.run(
        ["apt-cache", "dumpavail"], capture_output=True, text=True, check=True
    ).stdout
    packages, providers = {}, {}
    for stanza in dump.split("\n\n"):
        fields, key = {}, None
        for line in stanza.splitlines():
            if line.startswith(" ") and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if "Package" not in fields or fields.get("Architecture") not in ("amd64", "all"):
            continue
        packages[fields["Package"]] = fields
        for provided in fields.get("Provides", "").split(","):
            provided = provided.strip().split(" ")[0]
            if provided:
                providers.setdefault(provided, []).append(fields["Package"])
    return packages, providers


def dependencies(fields):
    """Alternatives of each Pre-Depends and Depends entry, without versions or arch qualifiers."""
    for field in ("Pre-Depends", "Depends"):
        for group in fields.get(field, "").split(","):
            group = group.strip()
            if group:
                yield [alt.strip().split(" ")[0].split(":")[0] for alt in group.split("|")]


def closure(packages, providers, roots, installed=frozenset()):
    """The packages `roots` need, beyond `installed`."""
    wanted, seen, stack = set(roots), set(), list(roots)
    have = lambda name: name in seen or name in installed or name in wanted
    while stack:
        name = stack.pop()
        if name not in packages:
            candidates = providers.get(name)
            if not candidates:
                print(f"warning: no package provides {name}", file=sys.stderr)
                continue
            name = ([c for c in candidates if have(c)] or candidates)[0]
        if name in seen:
            continue
        seen.add(name)
        for alternatives in dependencies(packages[name]):
            if any(have(alt) for alt in alternatives):
                continue
            # bookworm's images are merged-/usr without the usrmerge converter (which needs perl).
            stack.append("usr-is-merged" if "usr-is-merged" in alternatives else alternatives[0])
    return seen


def main(wanted):
    packages, providers = read_packages()
    required = [n for n, f in packages.items() if f.get("Priority") == "required"]
    base = closure(packages, providers, required + ["apt"])
    added = closure(packages, providers, wanted, frozenset(base)) - base
    rows = sorted(
        ((int(packages[n].get("Installed-Size", "0")), n, packages[n].get("Version")) for n in added),
        reverse=True,
    )
    for size, name, version in rows:
        print(f"{size:>8} KiB  {name} {version}")
    total = sum(size for size, _, _ in rows)
    print(f"total: {total} KiB = {total / 1024:.1f} MiB in {len(rows)} packages")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: apt-installed-size.py PACKAGE...")
    main(sys.argv[1:])
