package registry

// coreKinds are the host, middleware and liveness collectors.
var coreKinds = map[string]Builder{}
