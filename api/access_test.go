package api

import (
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/graph"
)

// selfService are the mutations that act only on the caller's own session, so
// any signed-in reader may call them.
var selfService = map[string]bool{"logout": true}

// TestMutationsChangingSharedStateNeedEditor walks every mutation of the schema
// through the rules the server enforces: a viewer may call none of them but the
// public ones and the self-service ones, so a new mutation without
// @auth(role: EDITOR) or @auth(role: ADMIN) fails here.
func TestMutationsChangingSharedStateNeedEditor(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	rules := newAccessRules(schema)
	for _, f := range schema.Mutation.Fields {
		rule := rules.fields["Mutation."+f.Name]
		switch {
		case rule.public:
			if f.Name != "login" {
				t.Errorf("mutation %s is @public: only login may be", f.Name)
			}
		case selfService[f.Name]:
			if !rule.can(auth.RoleViewer) {
				t.Errorf("self-service mutation %s refuses viewers", f.Name)
			}
		case rule.can(auth.RoleViewer):
			t.Errorf("a viewer may call mutation %s: mark it @auth(role: EDITOR) or @auth(role: ADMIN)", f.Name)
		}
		if !rule.public && rule.can(auth.RoleIngest) {
			t.Errorf("an ingest token may call mutation %s", f.Name)
		}
	}
	if rule := rules.fields["Mutation.login"]; !rule.public {
		t.Error("login is not public: nobody could sign in")
	}
}

func TestEveryQueryAndSubscriptionNeedsAReader(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	rules := newAccessRules(schema)
	for _, root := range []*ast.Definition{schema.Query, schema.Subscription} {
		for _, f := range root.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue // introspection
			}
			rule := rules.fields[root.Name+"."+f.Name]
			if rule.public || rule.can(auth.RoleIngest) {
				t.Errorf("%s.%s is open to callers who may not read", root.Name, f.Name)
			}
		}
	}
}

func TestAccessOf(t *testing.T) {
	tests := []struct {
		name    string
		field   string
		public  bool
		role    auth.Role
		wantErr bool
	}{
		{"default", `x: Int`, false, auth.RoleViewer, false},
		{"public", `x: Int @public`, true, "", false},
		{"editor", `x: Int @auth(role: EDITOR)`, false, auth.RoleEditor, false},
		{"admin", `x: Int @auth(role: ADMIN)`, false, auth.RoleAdmin, false},
		{"ingest is not enforceable", `x: Int @auth(role: INGEST)`, false, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := `directive @auth(role: Role!) on FIELD_DEFINITION
directive @public on FIELD_DEFINITION
enum Role { INGEST VIEWER EDITOR ADMIN }
type Query { ` + tt.field + ` }`
			schema, err := gqlparser.LoadSchema(&ast.Source{Name: "test.graphqls", Input: src})
			if err != nil {
				t.Fatal(err)
			}
			got, err := accessOf(schema.Query.Fields.ForName("x"))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got.public != tt.public || got.role != tt.role {
				t.Fatalf("access = %+v, want public %v role %q", got, tt.public, tt.role)
			}
		})
	}
}
