//go:build !unix

package store

import (
	"fmt"
	"os"
)

// lockDir creates the lock file; without flock, two collectors on one
// directory are not detected on this platform.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create lock file %q: %w", path, err)
	}
	return f, nil
}
