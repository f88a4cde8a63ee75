package main

import (
	_ "embed"
	"net/http"
)

// openapiDoc is the hub's OpenAPI 3.1 document, kept in the repository as
// openapi.json and served at GET /openapi.json. The contract test keeps it
// and the route table in step.
//
//go:embed openapi.json
var openapiDoc []byte

// openapiRoutes serves the document.
func (a *app) openapiRoutes() []route {
	return []route{{Method: http.MethodGet, Pattern: "/openapi.json", Access: public, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(openapiDoc)
	})}}
}
