package store

// AutoStep exposes the step chosen for queries without one.
var AutoStep = autoStep
