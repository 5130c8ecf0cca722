// Command olm-validate runs operator-framework's own bundle validators, the ones
// `operator-sdk bundle validate --select-optional suite=operatorframework` runs, over bundle
// directories: the default bundle validators (CSV, CRDs, bundle), OperatorHub v2 and good
// practices. It prints every result, warnings included, and exits 1 when any is an error.
//
// Usage: olm-validate [-k8s-version 1.30] <bundle dir> [<bundle dir> ...]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
)

func main() {
	k8sVersion := flag.String("k8s-version", "", "Kubernetes version the bundle targets (checks removed APIs)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: olm-validate [-k8s-version X.Y] <bundle dir> [...]")
		os.Exit(2)
	}
	failed := false
	for _, dir := range flag.Args() {
		if !validateBundle(dir, *k8sVersion) {
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// validateBundle prints one line per result and reports whether the bundle has no errors.
func validateBundle(dir, k8sVersion string) bool {
	bundle, err := manifests.GetBundleFromDir(dir)
	if err != nil {
		fmt.Printf("ERRO %s: cannot load bundle: %v\n", dir, err)
		return false
	}
	validators := validation.DefaultBundleValidators.WithValidators(
		validation.OperatorHubV2Validator,
		validation.GoodPracticesValidator,
	)
	objs := bundle.ObjectsToValidate()
	if k8sVersion != "" {
		objs = append(objs, map[string]string{"k8s-version": k8sVersion})
	}
	errs, warns := 0, 0
	for _, result := range validators.Validate(objs...) {
		for _, e := range result.Errors {
			errs++
			fmt.Printf("ERRO %s: %s\n", result.Name, e.Error())
		}
		for _, w := range result.Warnings {
			warns++
			fmt.Printf("WARN %s: %s\n", result.Name, w.Error())
		}
	}
	fmt.Printf("%s: bundle %s, %d error(s), %d warning(s)\n", dir, bundle.Name, errs, warns)
	return errs == 0
}
