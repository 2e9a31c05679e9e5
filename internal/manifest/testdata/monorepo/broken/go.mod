module broken

require (
