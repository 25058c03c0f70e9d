//go:build !linux

package broker

import "os"

// fadviseDontNeed does nothing where posix_fadvise is not available.
func fadviseDontNeed(*os.File) error { return nil }
