/*
 * Random bytes from the kernel (getrandom(2)): upload session ids, salts,
 * token ids. One place for the EINTR and short-read loop.
 */
#ifndef BERTH_RANDOM_H
#define BERTH_RANDOM_H

#include <stddef.h>

/* Fill buf with len random bytes. It blocks only before the kernel's pool
 * is first seeded (early boot). 0, or a negative error (errno kept). */
int berth_random(void *buf, size_t len);

#endif
