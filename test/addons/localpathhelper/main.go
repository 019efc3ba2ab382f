// Command local-path-helper prepares and removes one volume directory for
// local-path-provisioner. The provisioner runs it in a helper pod (its
// setupCommand / teardownCommand) with `-p PATH -s SIZE -m MODE -a ACTION`.
//
// It exists because upstream's default helper runs `/bin/sh` scripts in a
// busybox image, and no image registry can be reached here: this static
// binary ships in the provisioner's own FROM-scratch image instead.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// RequireFUSEEnv names a directory (the `replicated` class's shared path)
// under which volumes may only be made or removed while it is a FUSE mount:
// if a node lacks its GlusterFS mount, the hostPath would silently be a plain
// local directory and the "replicated" data would live on one node only.
const RequireFUSEEnv = "LOCAL_PATH_HELPER_REQUIRE_FUSE_UNDER"

// fuseSuperMagic is statfs' f_type of a FUSE filesystem (GlusterFS' client).
const fuseSuperMagic = 0x65735546

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "local-path-helper:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("local-path-helper", flag.ContinueOnError)
	path := fs.String("p", "", "volume directory")
	fs.String("s", "", "requested size in bytes (not enforced)")
	mode := fs.String("m", "Filesystem", "volume mode")
	action := fs.String("a", "", "create or delete")
	if err := fs.Parse(args); err != nil {
		return err
	}
	clean := filepath.Clean(*path)
	if !filepath.IsAbs(clean) || clean == "/" || filepath.Dir(clean) == "/" {
		return fmt.Errorf("refusing volume path %q: it must be an absolute path at least two levels deep", *path)
	}
	if *mode != "Filesystem" {
		return fmt.Errorf("volume mode %q is not supported for %s (only Filesystem)", *mode, clean)
	}
	if shared := os.Getenv(RequireFUSEEnv); shared != "" {
		shared = filepath.Clean(shared)
		if strings.HasPrefix(clean, shared+"/") {
			var st syscall.Statfs_t
			if err := syscall.Statfs(shared, &st); err != nil {
				return fmt.Errorf("checking the shared filesystem at %s: %w", shared, err)
			}
			if st.Type != fuseSuperMagic {
				return fmt.Errorf("%s is not a FUSE (GlusterFS) mount on this node (filesystem type %#x): refusing to %s %s on a local disk; mount the replicated volume (addons.MountAll) and retry", shared, st.Type, *action, clean)
			}
		}
	}
	switch *action {
	case "create":
		if err := os.MkdirAll(clean, 0o777); err != nil {
			return fmt.Errorf("creating %s: %w", clean, err)
		}
		// MkdirAll's mode is filtered by the umask; pods of any user write here.
		if err := os.Chmod(clean, 0o777); err != nil {
			return fmt.Errorf("opening up %s: %w", clean, err)
		}
	case "delete":
		if err := os.RemoveAll(clean); err != nil {
			return fmt.Errorf("removing %s: %w", clean, err)
		}
	default:
		return fmt.Errorf("unknown action %q (want create or delete)", *action)
	}
	return nil
}
