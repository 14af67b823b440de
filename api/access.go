package api

import (
	"context"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/amas-eye/amas/auth"
)

// access is what one root field asks of its caller.
type access struct {
	public bool
	// role is the least role, checked with its Can method; the default is read.
	role auth.Role
	can  func(auth.Role) bool
}

// accessRules enforces the schema's @public and @auth(role:) directives on the
// root fields of Query, Mutation and Subscription — the one place they are
// enforced (gqlgen.yml marks both skip_runtime). A root field without either
// directive needs a caller who may read, so no field is open by accident.
type accessRules struct {
	roots  map[string]bool   // names of the root types
	fields map[string]access // by "Type.field"
}

// newAccessRules reads the directives of every root field once, at start.
// It panics on a role it does not know: that is a bug in the schema.
func newAccessRules(schema *ast.Schema) *accessRules {
	a := &accessRules{roots: map[string]bool{}, fields: map[string]access{}}
	for _, root := range []*ast.Definition{schema.Query, schema.Mutation, schema.Subscription} {
		if root == nil {
			continue
		}
		a.roots[root.Name] = true
		for _, f := range root.Fields {
			rule, err := accessOf(f)
			if err != nil {
				panic(fmt.Sprintf("schema: %s.%s: %v", root.Name, f.Name, err))
			}
			a.fields[root.Name+"."+f.Name] = rule
		}
	}
	return a
}

func accessOf(f *ast.FieldDefinition) (access, error) {
	if strings.HasPrefix(f.Name, "__") || f.Directives.ForName("public") != nil {
		// Introspection: the schema is public.
		return access{public: true}, nil
	}
	d := f.Directives.ForName("auth")
	if d == nil {
		return access{role: auth.RoleViewer, can: auth.Role.CanRead}, nil
	}
	arg := d.Arguments.ForName("role")
	if arg == nil || arg.Value == nil {
		return access{}, fmt.Errorf("@auth without a role")
	}
	role := auth.Role(strings.ToLower(arg.Value.Raw))
	switch role {
	case auth.RoleViewer:
		return access{role: role, can: auth.Role.CanRead}, nil
	case auth.RoleEditor:
		return access{role: role, can: auth.Role.CanEdit}, nil
	case auth.RoleAdmin:
		return access{role: role, can: auth.Role.CanAdmin}, nil
	}
	return access{}, fmt.Errorf("@auth(role: %s) is not enforceable: want VIEWER, EDITOR or ADMIN", arg.Value.Raw)
}

// check is the field middleware: it lets a root field run only when its caller
// qualifies, and every other field through.
func (a *accessRules) check(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !a.roots[fc.Object] {
		return next(ctx)
	}
	rule, ok := a.fields[fc.Object+"."+fc.Field.Name]
	if !ok {
		// __typename and any field the schema does not list.
		if strings.HasPrefix(fc.Field.Name, "__") {
			return next(ctx)
		}
		return nil, fmt.Errorf("%w: no access rule for %s.%s", auth.ErrForbidden, fc.Object, fc.Field.Name)
	}
	if rule.public {
		return next(ctx)
	}
	if p, ok := auth.FromContext(ctx); ok && !rule.can(p.Role) {
		return nil, fmt.Errorf("%w: %s needs the %s role or higher, and you are %s",
			auth.ErrForbidden, fc.Field.Name, rule.role, p.Role)
	}
	// Without a caller, Require says why: not signed in, or a cookie sent
	// cross-site.
	if _, err := auth.Require(ctx, rule.can); err != nil {
		return nil, err
	}
	return next(ctx)
}
