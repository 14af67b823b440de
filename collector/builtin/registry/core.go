package registry

import (
	"github.com/amas-eye/amas/collector/builtin/liveness"
	"github.com/amas-eye/amas/collector/builtin/mysql"
	"github.com/amas-eye/amas/collector/builtin/osstat"
	"github.com/amas-eye/amas/collector/builtin/postgres"
	"github.com/amas-eye/amas/collector/builtin/promscrape"
	"github.com/amas-eye/amas/collector/builtin/redis"
)

// coreKinds are the host, middleware and liveness collectors.
var coreKinds = map[string]Builder{
	"os":         withConfig(osstat.DefaultConfig, osstat.New),
	"mysql":      withConfig(mysql.DefaultConfig, mysql.New),
	"redis":      withConfig(redis.DefaultConfig, redis.New),
	"postgres":   withConfig(postgres.DefaultConfig, postgres.New),
	"prometheus": withConfig(promscrape.DefaultConfig, promscrape.New),
	"ping":       withConfig(liveness.DefaultPingConfig, liveness.NewPing),
	"process":    withConfig(liveness.DefaultProcessConfig, liveness.NewProcess),
	"tcp":        withConfig(zeroConfig[liveness.TCPConfig], liveness.NewTCP),
	"http":       withConfig(zeroConfig[liveness.HTTPConfig], liveness.NewHTTP),
	"alive":      withConfig(zeroConfig[struct{}], func(struct{}) (*liveness.Alive, error) { return liveness.NewAlive(), nil }),
}
