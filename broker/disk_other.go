//go:build !unix

package broker

import (
	"errors"
)

func statfs(string) (free, total uint64, err error) {
	return 0, 0, errors.New("broker: measuring free disk space is supported on unix only")
}
