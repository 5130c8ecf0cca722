# Sourced (from the repository's root) by hack/setup.sh, hack/test.sh, hack/up.sh and
# hack/node.sh: puts the pinned Node (hack/node-runtime.json, installed into ~/.cache/trellis when
# missing) first on PATH, so `node`, `npx` and every child process started as `node` or
# `process.execPath` run on it, whatever Node the machine has. npm_config_nodedir points node-gyp
# at the same runtime's headers (the package carries include/node), so a native addon is built
# for it without fetching headers from anywhere. Needs node_modules (tsx): run after `npm ci`.
trellis_node_bin="$(node --import tsx hack/node-runtime.ts bin-dir)"
PATH="$trellis_node_bin:$PATH"
npm_config_nodedir="$(dirname "$trellis_node_bin")"
export PATH npm_config_nodedir
unset trellis_node_bin
