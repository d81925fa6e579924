package docs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// asyncPage is the rendered part of the AsyncAPI document: the channel, its messages by
// direction and the payload schemas.
type asyncPage struct {
	Title, Version, Description, Address string
	Operations                           []asyncOperation
	Schemas                              []schema
}

type asyncOperation struct {
	Action, Title, Description string
	Messages                   []asyncMessage
}

type asyncMessage struct {
	Name, Title, Payload string
}

type asyncDoc struct {
	Info struct {
		Title, Version, Description string
	}
	Channels map[string]struct {
		Address string
	}
	Operations map[string]struct {
		Action, Title, Description string
		Messages                   []struct {
			Ref string `yaml:"$ref"`
		}
	}
	Components struct {
		Messages map[string]struct {
			Name, Title string
			Payload     struct {
				Ref string `yaml:"$ref"`
			}
		}
		Schemas map[string]any
	}
}

// renderAsyncAPI reads the parts of an AsyncAPI 3 document the reference page shows.
func renderAsyncAPI(src []byte) (*asyncPage, error) {
	var d asyncDoc
	if err := yaml.Unmarshal(src, &d); err != nil {
		return nil, fmt.Errorf("docs: asyncapi: %w", err)
	}
	p := &asyncPage{Title: d.Info.Title, Version: d.Info.Version, Description: d.Info.Description}
	for _, c := range d.Channels {
		p.Address = c.Address
	}
	last := func(ref string) string { return ref[strings.LastIndex(ref, "/")+1:] }
	ids := make([]string, 0, len(d.Operations))
	for id := range d.Operations {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		op := d.Operations[id]
		o := asyncOperation{Action: op.Action, Title: op.Title, Description: op.Description}
		for _, m := range op.Messages {
			msg, ok := d.Components.Messages[last(m.Ref)]
			if !ok {
				return nil, fmt.Errorf("docs: asyncapi: operation %s: unknown message %s", id, m.Ref)
			}
			o.Messages = append(o.Messages, asyncMessage{Name: msg.Name, Title: msg.Title, Payload: last(msg.Payload.Ref)})
		}
		p.Operations = append(p.Operations, o)
	}
	names := make([]string, 0, len(d.Components.Schemas))
	for n := range d.Components.Schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := json.MarshalIndent(d.Components.Schemas[n], "", "  ")
		if err != nil {
			return nil, fmt.Errorf("docs: asyncapi schema %s: %w", n, err)
		}
		p.Schemas = append(p.Schemas, schema{Name: n, JSON: string(bytes.TrimSpace(b))})
	}
	return p, nil
}
