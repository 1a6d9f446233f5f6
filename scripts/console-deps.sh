#!/bin/sh
# console-deps.sh: install the console's front-end packages (Leaflet, the
# Natural Earth borders of world-atlas, topojson-client) and its browser
# test driver (puppeteer-core) from the npm registry into
# console/web/node_modules, exactly as pinned by console/web/package-lock.json
# (`npm ci`). Nothing is downloaded at run time and no browser build is
# fetched: the tests use Debian's chromium. Does nothing when the installed
# tree already matches the lock file.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
web="$top/console/web"

if ! command -v npm >/dev/null 2>&1; then
	echo "console-deps: npm not found (apt-get install npm)" >&2
	exit 1
fi
stamp="$web/node_modules/.package-lock.json"
if [ -f "$stamp" ] && [ "$stamp" -nt "$web/package-lock.json" ] &&
    [ -d "$web/node_modules/leaflet" ] &&
    [ -d "$web/node_modules/puppeteer-core" ]; then
	echo "console-deps: console/web/node_modules is up to date"
	exit 0
fi
echo "console-deps: npm ci in console/web"
cd "$web"
PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
