package main

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"
)

// loadOpenAPI parses and validates the embedded document.
func loadOpenAPI(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapiDoc)
	require.NoError(t, err)
	require.True(t, doc.IsOpenAPI31OrLater(), "the document must be OpenAPI 3.1")
	require.NoError(t, doc.Validate(context.Background()))
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	loadOpenAPI(t)
}
