/*
 * certificates.h - the serving generation's certificates, published in the
 * shm header (struct shm_certificate) for `sakerctl status` and the
 * saker_tls_certificate_not_after_seconds metric: which file each https://
 * endpoint presents, for which name, and when it expires.
 *
 * The master publishes at start and when a reload commits, under
 * header_seq, from the TLS contexts the generation's workers inherit, so
 * the table shows what clients are served, not what a file on disk now
 * holds.
 */
#ifndef SAKER_MASTER_CERTIFICATES_H
#define SAKER_MASTER_CERTIFICATES_H

struct generation;
struct shm;

/* Replaces the table with g's certificates: every https:// endpoint once
 * (an endpoint bound on several addresses shares one entry), its default
 * first, then its sni: names. Entries past SHM_MAX_CERTIFICATES are
 * counted in certificates_unlisted. */
void certificates_publish(const struct generation *g, struct shm *shm);

#endif
