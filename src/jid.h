/*
 * jid: the small part of JID handling the project needs: the domain part of
 * an address, and whether an address belongs to a domain.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_JID_H
#define XCOMP_JID_H

#include <stddef.h>

/*
 * The domain part of jid ("user@dom/res" -> "dom") into out. -1 if jid is
 * empty, the domain is empty or does not fit.
 */
int jid_domain(const char *jid, char *out, size_t outlen);

/* 1 if jid's domain part equals domain (ASCII case-insensitive), else 0. */
int jid_in_domain(const char *jid, const char *domain);

/* 1 if s is a plausible DNS domain name (letters, digits, '-', '.', '_'), else 0. */
int jid_valid_domain(const char *s);

#endif
