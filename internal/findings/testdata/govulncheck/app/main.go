// Command vulnapp is a tiny program that depends on vulnerable versions of
// golang.org/x/text and gopkg.in/yaml.v2, so that govulncheck has findings
// at every scan level: it calls language.Parse and yaml.Unmarshal and
// (*yaml.Decoder).Decode, imports golang.org/x/text/language without
// calling language.ParseAcceptLanguage, and requires golang.org/x/text
// without importing golang.org/x/text/unicode/norm.
package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/text/language"
	"gopkg.in/yaml.v2"
)

func main() {
	tag, err := language.Parse(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var v map[string]any
	if err := yaml.Unmarshal([]byte(os.Args[2]), &v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := yaml.NewDecoder(strings.NewReader(os.Args[3])).Decode(&v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(tag, v)
}
