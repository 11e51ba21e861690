/*
 * privdrop: xcompd started as root becomes the "user" of xcompd.conf(5)
 * once it has opened what needs root.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_PRIVDROP_H
#define XCOMP_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

/* Whether user exists (-t and the start); its ids in *uid and *gid. */
int privdrop_lookup(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen);
/*
 * Become user: its groups (initgroups), its group, then its user id, each
 * checked, and root out of reach afterwards. Already being that user is
 * fine; any other user but root cannot switch, and says so.
 */
int privdrop(const char *user, char *err, size_t errlen);

#endif
