// Package asyncapi embeds the WebSocket contract, asyncapi.yaml, served at /asyncapi.yaml and
// used to validate every inbound frame.
package asyncapi

import _ "embed"

// YAML is the AsyncAPI document as written.
//
//go:embed asyncapi.yaml
var YAML []byte
