// Package openapi embeds the HTTP contract, openapi.yaml, the source of truth for gen/api
// and the document served at /openapi.yaml.
package openapi

import _ "embed"

// YAML is the OpenAPI document as written.
//
//go:embed openapi.yaml
var YAML []byte
