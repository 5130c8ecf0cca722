// The trellis-cni launcher: the file the container runtime executes as the plugin. It finds the
// plugin tree beside it (trellis-cni.d/current, resolved once, so one call uses one tree even if
// the installer switches trees meanwhile), and execs the tree's launch.json argv (Node through
// the tree's own loader, on the plugin bundle), passing the CNI variables, stdin and stdout
// through untouched. Static (CGO_ENABLED=0): it needs nothing from the node.
//
// The names here are cni/plugin-tree.ts's (TREES_DIR, CURRENT_TREE, LAUNCH_FILE,
// TREE_PLACEHOLDER, TREE_ENV); cni/installer.test.ts runs this launcher against a tree the
// installer wrote, so the two cannot drift apart unnoticed.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// fail prints a CNI error object (code 5, I/O failure), as the runtime expects of a plugin.
func fail(msg string) {
	out, _ := json.Marshal(map[string]interface{}{
		"cniVersion": "1.0.0",
		"code":       5,
		"msg":        "trellis-cni launcher: " + msg,
	})
	os.Stdout.Write(out)
	os.Exit(1)
}

func main() {
	exe, err := os.Executable()
	if err != nil {
		fail(err.Error())
	}
	tree, err := filepath.EvalSymlinks(filepath.Join(filepath.Dir(exe), "trellis-cni.d", "current"))
	if err != nil {
		fail("no plugin tree beside the launcher: " + err.Error())
	}
	raw, err := os.ReadFile(filepath.Join(tree, "launch.json"))
	if err != nil {
		fail(err.Error())
	}
	var spec struct {
		Argv []string `json:"argv"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil || len(spec.Argv) == 0 {
		fail(fmt.Sprintf("%s/launch.json has no argv", tree))
	}
	argv := make([]string, 0, len(spec.Argv)+len(os.Args))
	for _, a := range spec.Argv {
		argv = append(argv, strings.ReplaceAll(a, "{tree}", tree))
	}
	argv = append(argv, os.Args[1:]...)
	env := append(os.Environ(), "TRELLIS_CNI_TREE="+tree)
	err = syscall.Exec(argv[0], argv, env)
	fail(fmt.Sprintf("exec %s: %v", argv[0], err))
}
