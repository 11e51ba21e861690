/*
 * privdrop: give up root for the configured user. The order matters:
 * supplementary groups and the group while still root, the user id last.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "privdrop.h"

int
privdrop_lookup(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	struct passwd *pw;

	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, errlen, "user %s: %s", user,
		    errno ? strerror(errno) : "no such user (create it, e.g. useradd --system)");
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

int
privdrop(const char *user, char *err, size_t errlen)
{
	uid_t uid, ruid, euid, suid;
	gid_t gid, rgid, egid, sgid;

	if (privdrop_lookup(user, &uid, &gid, err, errlen) == -1)
		return -1;
	if (geteuid() != 0) {
		if (geteuid() == uid)
			return 0; /* started as that user already (a unit's User=) */
		snprintf(err, errlen,
		    "user %s: xcompd runs as uid %ld, not root, and cannot become %s; start it "
		    "as root, or remove the user key",
		    user, (long)geteuid(), user);
		return -1;
	}
	if (uid == 0)
		return 0;
	if (initgroups(user, gid) == -1) {
		snprintf(err, errlen, "user %s: initgroups: %s", user, strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) == -1) {
		snprintf(err, errlen, "user %s: setgid %ld: %s", user, (long)gid, strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) == -1) {
		snprintf(err, errlen, "user %s: setuid %ld: %s", user, (long)uid, strerror(errno));
		return -1;
	}
	/* Trust, but check: every id changed, and there is no way back. */
	if (getresuid(&ruid, &euid, &suid) == -1 || getresgid(&rgid, &egid, &sgid) == -1 ||
	    ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid ||
	    sgid != gid || setuid(0) != -1) {
		snprintf(err, errlen, "user %s: the ids did not change as asked", user);
		return -1;
	}
	return 0;
}
