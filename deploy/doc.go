// Package deploy holds the deployment files (Prometheus, Grafana, systemd,
// docker compose); its tests check them with the tools that consume them.
//
// It imports no package of the module.
package deploy
