// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	schemaOnce     sync.Once
	compiledSchema *jsonschema.Schema
	schemaErr      error
)

// schema compiles schema/v1.json (as embedded in the binary), asserting
// formats (ipv4, ipv6, date-time) too.
func schema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	schemaOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schemaV1))
		if err != nil {
			schemaErr = err
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if schemaErr = c.AddResource("v1.json", doc); schemaErr != nil {
			return
		}
		compiledSchema, schemaErr = c.Compile("v1.json")
	})
	if schemaErr != nil {
		t.Fatalf("schema/v1.json: %v", schemaErr)
	}
	return compiledSchema
}

// validate checks each line of out (one JSON document per line) against the
// schema and returns the decoded documents.
func validate(t testing.TB, out string) []map[string]any {
	t.Helper()
	sch := schema(t)
	var docs []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
		if err != nil {
			t.Fatalf("not JSON: %v\n%s", err, line)
		}
		if err := sch.Validate(inst); err != nil {
			t.Fatalf("does not match schema/v1.json: %v\n%s", err, line)
		}
		var m map[string]any
		d := json.NewDecoder(strings.NewReader(line))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, m)
	}
	if len(docs) == 0 {
		t.Fatalf("no JSON document in %q", out)
	}
	return docs
}
