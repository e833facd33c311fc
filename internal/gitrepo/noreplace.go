package gitrepo

import "os"

// linkNoReplace gives newpath oldpath's file unless newpath exists (link(2) never
// replaces), then removes oldpath's name.
func linkNoReplace(oldpath, newpath string) error {
	if err := os.Link(oldpath, newpath); err != nil {
		return err
	}
	return os.Remove(oldpath)
}
