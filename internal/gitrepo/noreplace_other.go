//go:build !linux

package gitrepo

// renameNoReplace renames oldpath to newpath unless newpath exists; it returns an
// error satisfying os.ErrExist when newpath exists.
func renameNoReplace(oldpath, newpath string) error { return linkNoReplace(oldpath, newpath) }
