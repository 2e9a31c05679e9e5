module github.com/evidentsec/evident

go 1.26.3

require (
	github.com/package-url/packageurl-go v0.1.7
	github.com/spf13/cobra v1.10.2
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)
