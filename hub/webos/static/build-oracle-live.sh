#!/bin/sh
# Rebuild oracle-live.js (one file, committed) from oracle-live.src.js and the npm packages yjs
# and y-websocket, bundled with esbuild. The packages are installed into a temporary folder that
# is removed afterwards: node_modules never enters the repository. The bundle starts with the
# licence of every package it contains.
#   hub/webos/static/build-oracle-live.sh      (needs node and npm)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
cd "$work"
printf '{"name": "oracle-live-build", "private": true}\n' > package.json
npm install --no-audit --no-fund --silent yjs@13.6.33 y-websocket@3.1.0 esbuild@0.28.2
cp "$here/oracle-live.src.js" .
npx --no-install esbuild oracle-live.src.js --bundle --format=iife --target=es2020 --minify \
  --legal-comments=none --metafile=meta.json --outfile=bundle.js --log-level=warning
node -e '
const fs = require("fs")
const meta = JSON.parse(fs.readFileSync("meta.json", "utf8"))
const names = new Set()
for (const input of Object.keys(meta.inputs)) {
  const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//)
  if (m) names.add(m[1])
}
const source = require("crypto").createHash("sha256")
  .update(fs.readFileSync("oracle-live.src.js")).digest("hex")
let header = "/*! oracle-live.js: the WebOS Oracle live canvas script, bundled with esbuild by\n" +
  "hub/webos/static/build-oracle-live.sh.\n" +
  `source: oracle-live.src.js sha256 ${source}\n` +
  "It contains these npm packages, each under its licence:\n"
for (const name of [...names].sort()) {
  const pkg = JSON.parse(fs.readFileSync(`node_modules/${name}/package.json`, "utf8"))
  const licence = ["LICENSE", "LICENSE.md", "LICENCE"].map((f) => `node_modules/${name}/${f}`)
    .find((f) => fs.existsSync(f))
  header += `\n${name} ${pkg.version} (${pkg.license})\n`
  if (licence) header += fs.readFileSync(licence, "utf8").replaceAll("*/", "* /").trim() + "\n"
}
header += "*/\n"
fs.writeFileSync("oracle-live.js", header + fs.readFileSync("bundle.js", "utf8"))
'
cp oracle-live.js "$here/oracle-live.js"
echo "wrote $here/oracle-live.js ($(wc -c < "$here/oracle-live.js") bytes)"
