// argocd-health runs an Argo CD resource health check (health.lua) over objects with Argo CD's
// own Lua VM (github.com/argoproj/argo-cd/v3/util/lua, on gopher-lua), as the application
// controller does. Usage: argocd-health HEALTH.lua < objects.json (a JSON array of objects);
// prints a JSON array of {"status", "message"}, one per object.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/argoproj/argo-cd/v3/util/lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health HEALTH.lua < objects.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var objects []map[string]any
	if err := json.NewDecoder(os.Stdin).Decode(&objects); err != nil {
		fmt.Fprintln(os.Stderr, "objects:", err)
		os.Exit(1)
	}
	vm := lua.VM{}
	out := make([]result, 0, len(objects))
	for _, o := range objects {
		h, err := vm.ExecuteHealthLua(&unstructured.Unstructured{Object: o}, string(script))
		if err != nil {
			fmt.Fprintln(os.Stderr, "health.lua:", err)
			os.Exit(1)
		}
		if h == nil {
			out = append(out, result{})
			continue
		}
		out = append(out, result{Status: string(h.Status), Message: h.Message})
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}
