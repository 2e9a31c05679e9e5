package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of the API; a test holds it to the
// routes and to the answers of real requests.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI answers the OpenAPI document.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
