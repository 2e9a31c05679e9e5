module example.com/mono/gateway

go 1.26.0

toolchain go1.26.8

require (
	golang.org/x/net v0.54.0
	golang.org/x/text v0.37.0 // indirect
)

replace github.com/old/lib => github.com/new/lib v1.2.0
