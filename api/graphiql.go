package api

import (
	"net/http"

	"github.com/99designs/gqlgen/graphql/playground"
)

// graphiql serves the GraphiQL IDE for /graphql. The page loads GraphiQL's
// scripts from a CDN (jsDelivr, pinned with subresource integrity), so it needs
// the browser to reach the internet; the API itself does not.
func graphiql() http.Handler {
	return playground.Handler("Amas GraphiQL", "/graphql")
}
