module example.com/mono/orders

go 1.25.0

require (
	golang.org/x/net v0.50.0
	gopkg.in/yaml.v2 v2.2.7
)
