package config

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// geteuid is os.Geteuid; tests replace it to check both sides of the root rule.
var geteuid = os.Geteuid

// resolveIDs resolves the user and group written in t (w holds them, over the values it
// inherited) to w.Uid and w.Gid. Only root may switch users, so as anyone else both keys are
// errors. Without a group of its own the worker runs with the group inherited from
// [defaults], else with its user's primary group.
func (p *parser) resolveIDs(t table, w *Worker, set keySet) {
	hasUser, hasGroup := set.has("user"), set.has("group")
	if !hasUser && !hasGroup {
		return // inherited as they are
	}
	if hasUser && !set["user"] || hasGroup && !set["group"] {
		return // the invalid value is reported already
	}
	if euid := geteuid(); euid != 0 {
		for _, k := range []string{"user", "group"} {
			if set.has(k) {
				p.add(p.line(t, k), t.label+" "+k,
					fmt.Errorf("only allowed when shmmon runs as root (it runs as uid %d; want no %s key)", euid, k))
			}
		}
		return
	}
	var primary *uint32
	if hasUser {
		uid, gid, err := lookupUser(w.User)
		if err != nil {
			p.add(p.line(t, "user"), t.label+" user", err)
			return
		}
		w.Uid, primary = &uid, gid
	}
	switch {
	case hasGroup:
		gid, err := lookupGroup(w.Group)
		if err != nil {
			p.add(p.line(t, "group"), t.label+" group", err)
			return
		}
		w.Gid = &gid
	case w.Group != "":
		// The group of [defaults] stays, resolved there.
	case primary != nil:
		w.Gid = primary
	default:
		p.add(p.line(t, "user"), t.label+" user",
			fmt.Errorf("%q has no entry in the user database, so its group is unknown (want a group key too)", w.User))
	}
}

// lookupUser returns the uid of a user name or numeric uid, and its primary gid when the user
// database knows it (a numeric uid need not be listed there).
func lookupUser(s string) (uid uint32, primary *uint32, err error) {
	u, err := user.Lookup(s)
	if err != nil {
		n, perr := strconv.ParseUint(s, 10, 32)
		if perr != nil {
			return 0, nil, wrapf(err, "%s: no such user (want a user name from the user database, or a numeric uid)", shorten(s))
		}
		if u, err = user.LookupId(s); err != nil {
			return uint32(n), nil, nil
		}
	}
	uid, err1 := parseID(u.Uid)
	gid, err2 := parseID(u.Gid)
	if err1 != nil || err2 != nil {
		return 0, nil, fmt.Errorf("%s: the user database gives uid %q, gid %q (want numbers)", shorten(s), u.Uid, u.Gid)
	}
	return uid, &gid, nil
}

// lookupGroup returns the gid of a group name or numeric gid.
func lookupGroup(s string) (uint32, error) {
	g, err := user.LookupGroup(s)
	if err != nil {
		n, perr := strconv.ParseUint(s, 10, 32)
		if perr != nil {
			return 0, wrapf(err, "%s: no such group (want a group name from the group database, or a numeric gid)", shorten(s))
		}
		if g, err = user.LookupGroupId(s); err != nil {
			return uint32(n), nil
		}
	}
	gid, err := parseID(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("%s: the group database gives gid %q (want a number)", shorten(s), g.Gid)
	}
	return gid, nil
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}
