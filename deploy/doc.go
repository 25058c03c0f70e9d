// Package deploy holds raftmq's deployment files (the systemd units, the
// docker-compose cluster, the base-image script used by the Dockerfile) and
// the tests that check them for real: systemd-analyze verify of the units,
// and, with RAFTMQ_DOCKER_TESTS=1 and a Docker engine, building the image and
// running a node and a three-node cluster in containers. It has no Go API.
package deploy
