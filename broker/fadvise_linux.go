package broker

import (
	"os"

	"golang.org/x/sys/unix"
)

// fadviseDontNeed drops f's clean cached pages.
func fadviseDontNeed(f *os.File) error {
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
