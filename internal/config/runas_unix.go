//go:build unix

package config

import (
	"bufio"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
)

// umaskRefused is why umask cannot be set here ("" where it can).
const umaskRefused = ""

// lookupRunAs resolves user = and group = (group may be ""). which names
// the key an error is about.
func lookupRunAs(name, group string) (ra *RunAs, which string, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, "user", fmt.Errorf("no user %q on this machine%s; create it (useradd) or name an existing user", name, DidYouMean(name, dbNames("/etc/passwd")))
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	ra = &RunAs{User: u.Username, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir, Shell: loginShell(u.Username)}
	if g, err := user.LookupGroupId(u.Gid); err == nil {
		ra.Group = g.Name
	} else {
		ra.Group = u.Gid
	}
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, "group", fmt.Errorf("no group %q on this machine%s; create it (groupadd) or name an existing group", group, DidYouMean(group, dbNames("/etc/group")))
		}
		n, _ := strconv.ParseUint(g.Gid, 10, 32)
		ra.GID, ra.Group = uint32(n), g.Name
	}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if n, err := strconv.ParseUint(id, 10, 32); err == nil && !slices.Contains(ra.Groups, uint32(n)) {
				ra.Groups = append(ra.Groups, uint32(n))
			}
		}
	}
	if !slices.Contains(ra.Groups, ra.GID) {
		ra.Groups = append(ra.Groups, ra.GID)
	}
	euid, egid := os.Geteuid(), os.Getegid()
	switch {
	case euid == 0:
		ra.Switch = true
	case int(ra.UID) != euid:
		return nil, "user", fmt.Errorf("running as %q needs corral to run as root, and it runs as %s; start the daemon as root, or remove user to run the service as %s", name, self(), selfName())
	case int(ra.GID) != egid:
		return nil, "group", fmt.Errorf("running with group %q needs corral to run as root, and it runs with gid %d; start the daemon as root, or remove group", ra.Group, egid)
	}
	return ra, "", nil
}

// self describes the daemon's user: "alice (uid 1000)".
func self() string {
	return fmt.Sprintf("%s (uid %d)", selfName(), os.Geteuid())
}

func selfName() string {
	if u, err := user.LookupId(strconv.Itoa(os.Geteuid())); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Geteuid())
}

// loginShell is the user's shell from /etc/passwd ("" when not there:
// RunAs.Env then says /bin/sh, as su does for an empty shell field).
func loginShell(name string) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 7 && fields[0] == name {
			return fields[6]
		}
	}
	return ""
}

// dbNames lists the names of /etc/passwd or /etc/group, for hints.
func dbNames(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, _, ok := strings.Cut(sc.Text(), ":"); ok && name != "" && !strings.HasPrefix(name, "#") && !strings.HasPrefix(name, "+") {
			out = append(out, name)
		}
	}
	return out
}
