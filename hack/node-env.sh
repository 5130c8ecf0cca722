# Sourced (from the repository's root) by hack/test.sh, hack/up.sh and hack/node.sh: puts the
# pinned Node (hack/node-runtime.json, installed into ~/.cache/trellis when missing) first on
# PATH, so `node`, `npx` and every child process started as `node` or `process.execPath` run on
# it, whatever Node the machine has. Needs node_modules (tsx) in place: run hack/setup.sh first.
PATH="$(node --import tsx hack/node-runtime.ts bin-dir):$PATH"
export PATH
