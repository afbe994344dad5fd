package api

import _ "embed"

// openAPIDocument is the OpenAPI 3.1 description of the API, served at
// /api/v1/openapi.json. TestOpenAPIMatchesRoutes keeps it in step with the
// route table.
//
//go:embed openapi.json
var openAPIDocument []byte
