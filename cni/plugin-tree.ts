// The plugin tree: what the installer puts on a node so that the runtime can run trellis-cni
// without anything from the node but the kernel. The tree is a copy of the cni image's own
// program files (Node, the libraries it links, iptables and nsenter from Debian's packages, the
// bundle) at the paths they have in the image; every program in it runs through the tree's own
// dynamic loader with the tree's libraries only (`--inhibit-cache`), whatever libc the node has.
//
//   <binDir>/trellis-cni                  a static launcher (cni/launcher/main.go): resolves
//                                         trellis-cni.d/current once and execs launch.json's argv
//   <binDir>/trellis-cni.d/<id>/          one tree per content hash (id); launch.json inside
//   <binDir>/trellis-cni.d/current        symlink to the tree in use (replaced atomically)
//
// Owns the layout and the command lines; the copying is installer.ts's. Pure.

/** Paths inside a tree (and inside the image), relative to its root. */
export const TREE_LAYOUT = {
  loader: "lib64/ld-linux-x86-64.so.2",
  libraryPath: ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"],
  node: "usr/bin/node",
  program: "app/trellis-cni.mjs",
  nsenter: "usr/bin/nsenter",
  xtables: { nft: "usr/sbin/xtables-nft-multi", legacy: "usr/sbin/xtables-legacy-multi" },
  xtablesLibdir: "usr/lib/x86_64-linux-gnu/xtables",
  /** The folders of the image copied into a tree, whole. */
  folders: ["app", "lib", "lib64", "usr"],
} as const;

export const PLUGIN_NAME = "trellis-cni";
export const TREES_DIR = `${PLUGIN_NAME}.d`;
export const CURRENT_TREE = "current";
export const LAUNCH_FILE = "launch.json";
/** The launcher replaces this with the tree's absolute path (the target of `current`). */
export const TREE_PLACEHOLDER = "{tree}";
/** Set by the launcher for the program: the tree it runs from. */
export const TREE_ENV = "TRELLIS_CNI_TREE";

export interface LaunchSpec {
  /** argv of the program; argv[0] is the file executed. */
  argv: string[];
}

const at = (tree: string, path: string) => `${tree}/${path}`;

/** The loader's arguments that run a program of the tree with the tree's libraries only. */
function loaderArgs(tree: string): string[] {
  return [
    at(tree, TREE_LAYOUT.loader),
    "--inhibit-cache",
    "--library-path",
    TREE_LAYOUT.libraryPath.map((p) => at(tree, p)).join(":"),
  ];
}

/** What the launcher runs: Node from the tree on the plugin bundle (CNI arguments follow). */
export function launchSpec(): LaunchSpec {
  const tree = TREE_PLACEHOLDER;
  return { argv: [...loaderArgs(tree), at(tree, TREE_LAYOUT.node), at(tree, TREE_LAYOUT.program)] };
}

/**
 * The command that runs one iptables tool (by the name iptables gives it, e.g.
 * `iptables-nft-restore`) inside a network namespace: the tree's nsenter, then the tree's xtables
 * multi-call binary under that name. Without a tree (tests, development) the node's own nsenter
 * and iptables.
 */
export function netnsToolCommand(
  tree: string | undefined,
  netns: string,
  tool: string,
  args: string[],
): { file: string; args: string[]; env: Record<string, string> } {
  if (tree === undefined) return { file: "nsenter", args: [`--net=${netns}`, "--", tool, ...args], env: {} };
  const backend = tool.includes("-legacy-") ? "legacy" : "nft";
  const [loader, ...loaderRest] = loaderArgs(tree);
  return {
    file: loader as string,
    args: [
      ...loaderRest,
      at(tree, TREE_LAYOUT.nsenter),
      `--net=${netns}`,
      "--",
      ...loaderArgs(tree),
      "--argv0",
      tool,
      at(tree, TREE_LAYOUT.xtables[backend]),
      ...args,
    ],
    env: { XTABLES_LIBDIR: at(tree, TREE_LAYOUT.xtablesLibdir) },
  };
}
