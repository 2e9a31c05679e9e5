module example.com/shop

go 1.26.0

require (
	golang.org/x/net v0.0.0-20220906165146-f3363e06e74c
	golang.org/x/text v0.3.5
)
