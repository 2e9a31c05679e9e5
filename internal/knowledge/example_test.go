package knowledge_test

import (
	"fmt"
	"strings"

	"github.com/evidentsec/evident/internal/knowledge"
)

// A GHSA record of Log4Shell finds the entry keyed by its CVE.
func ExampleBase_Lookup() {
	kb, err := knowledge.Default()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range kb.Lookup("GHSA-jfh8-c2jp-5v3q") {
		for _, f := range e.Functions {
			fmt.Printf("%s %s %s.%s\n", e.ID, e.Package, f.Package, f.Symbol)
		}
	}
	// Output:
	// CVE-2021-44228 org.apache.logging.log4j:log4j-core org.apache.logging.log4j.core.lookup.JndiLookup.lookup
	// CVE-2021-44228 org.apache.logging.log4j:log4j-core org.apache.logging.log4j.core.net.JndiManager.lookup
}

// A user's entry with the same id and package replaces the shipped one.
func ExampleBase_Merge() {
	kb, err := knowledge.Default()
	if err != nil {
		fmt.Println(err)
		return
	}
	user, err := knowledge.Load(strings.NewReader(`
version: 1
entries:
  - id: CVE-2021-44228
    ecosystem: Maven
    package: org.apache.logging.log4j:log4j-core
    functions:
      - package: org.apache.logging.log4j.core.lookup
        symbol: JndiLookup.lookup
        reference: https://example.com/our-analysis
`), "ours.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	merged := kb.Merge(user)
	fmt.Println(merged.Len() == kb.Len())
	fmt.Println(merged.Lookup("CVE-2021-44228")[0].Functions[0].Reference)
	// Output:
	// true
	// https://example.com/our-analysis
}
