package statedir

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrUntrusted marks a state directory (or a path in it) corral refuses.
var ErrUntrusted = errors.New("statedir: untrusted")

// Prepare creates dir if it is missing (mode 0700), checks that it can be
// trusted and tightens its mode to 0700. It never follows a symlink at dir
// itself and changes nothing it has not checked first.
func Prepare(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("statedir: %w", err)
	}
	if _, err := os.Lstat(abs); errors.Is(err, fs.ErrNotExist) {
		// The parents are checked before anything is created under them.
		if err := checkParents(abs); err != nil {
			return err
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return fmt.Errorf("statedir: create %s: %w", abs, err)
		}
	}
	if err := Check(abs); err != nil {
		return err
	}
	return tighten(abs)
}

// Check says whether dir can be trusted as a state directory: it is a real
// directory (not a symlink), owned by the current user, writable by no one
// else, and each of its parents is owned by that user or root and writable
// by no one else unless it is sticky (as /tmp is).
func Check(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("statedir: %w", err)
	}
	st, err := os.Lstat(abs)
	if err != nil {
		return fmt.Errorf("statedir: %w", err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(abs)
		return fmt.Errorf("%w: state directory %s is a symlink (to %s); corral does not follow one there, since whoever made it chooses where a daemon writes: remove it (rm %s) or pass --state-dir with a real directory", ErrUntrusted, abs, target, abs)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: state directory %s is not a directory", ErrUntrusted, abs)
	}
	if err := checkOwner(abs, st, true); err != nil {
		return err
	}
	return checkParents(abs)
}

// checkParents checks every existing ancestor of abs, resolved as the kernel
// would resolve it: a parent reached through a symlink is trusted for what
// it really is.
func checkParents(abs string) error {
	parent := filepath.Dir(abs)
	real, err := filepath.EvalSymlinks(parent)
	if err != nil {
		// A missing parent is made by MkdirAll as ours; check what exists.
		for p := parent; ; p = filepath.Dir(p) {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				real = r
				break
			}
			if filepath.Dir(p) == p {
				return fmt.Errorf("statedir: %w", err)
			}
		}
	}
	for p := real; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("statedir: %w", err)
		}
		if err := checkOwner(p, st, false); err != nil {
			return err
		}
		if filepath.Dir(p) == p {
			return nil
		}
	}
}

// Refuse returns an error if name (a path inside a trusted state directory)
// exists and is not a regular file: a symlink there would make corral write
// through it. A missing file is fine; it is created without following.
func Refuse(name string) error {
	st, err := os.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("statedir: %w", err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(name)
		return fmt.Errorf("%w: %s is a symlink (to %s); corral does not write through symlinks in its state directory: remove it", ErrUntrusted, name, target)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file (%s); remove it", ErrUntrusted, name, strings.TrimSpace(st.Mode().Type().String()))
	}
	return nil
}

// MkdirIn creates (if missing) the directory rel inside the state directory
// root and checks that it is a real directory, not a symlink.
func MkdirIn(root, rel string) (string, error) {
	p := filepath.Join(root, rel)
	if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("statedir: %w", err)
	}
	st, err := os.Lstat(p)
	if err != nil {
		return "", fmt.Errorf("statedir: %w", err)
	}
	if st.Mode()&fs.ModeSymlink != 0 || !st.IsDir() {
		return "", fmt.Errorf("%w: %s is not a real directory (a symlink or a file); corral does not write through it: remove it", ErrUntrusted, p)
	}
	return p, nil
}

// OpenFile opens the file rel inside the state directory root, following no
// symlink at any component of rel.
func OpenFile(root, rel string, flag int, perm fs.FileMode) (*os.File, error) {
	if filepath.IsAbs(rel) || rel == ".." || strings.HasPrefix(filepath.Clean(rel), ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("statedir: %s is not inside %s", rel, root)
	}
	f, err := openBeneath(root, filepath.Clean(rel), flag, perm)
	if err != nil {
		if isLoop(err) {
			return nil, fmt.Errorf("%w: %s: a symlink stands in the path; corral does not write through symlinks in its state directory: remove it", ErrUntrusted, filepath.Join(root, rel))
		}
		return nil, fmt.Errorf("statedir: %w", err)
	}
	return f, nil
}

// openPortable is the fallback where the kernel cannot resolve without
// symlinks: each directory component is checked, the last one opened with
// O_NOFOLLOW (where the platform has it).
func openPortable(root, rel string, flag int, perm fs.FileMode) (*os.File, error) {
	parts := strings.Split(rel, string(filepath.Separator))
	p := root
	for _, c := range parts[:len(parts)-1] {
		p = filepath.Join(p, c)
		st, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			return nil, errLoop
		}
	}
	full := filepath.Join(root, rel)
	if oNoFollow == 0 {
		if st, err := os.Lstat(full); err == nil && st.Mode()&fs.ModeSymlink != 0 {
			return nil, errLoop
		}
	}
	return os.OpenFile(full, flag|oNoFollow, perm)
}

var errLoop = errors.New("too many levels of symbolic links")

// Key is a short, stable name for the state directory dir: it names the
// cgroup that holds its daemon's trees and is carried in every member's
// environment (CORRAL_STATE), so a daemon that has lost its journal still
// finds what an earlier run of the same state directory left, and never
// takes another corral's trees for its own.
func Key(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	// Resolved, so that two spellings of one directory (a symlinked
	// parent) give one key; a state directory not made yet resolves
	// through its parent.
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	} else if r, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(r, filepath.Base(abs))
	}
	sum := sha256.Sum256([]byte(filepath.Clean(abs)))
	return "state-" + hex.EncodeToString(sum[:8])
}
