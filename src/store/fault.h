/*
 * Fault injection for tests (sqlite's fault simulator, curl's torture mode):
 * the store calls berth_fault_check("<site>") just before a system call or
 * database step that can fail, and takes its real error path when the check
 * fails. Off unless the environment variable BERTH_FAULTS is set.
 */
#ifndef BERTH_STORE_FAULT_H
#define BERTH_STORE_FAULT_H

/*
 * 0 normally. When BERTH_FAULTS (read once, at the first check) names `site`,
 * the chosen calls return -1 with errno = EIO, or ENOSPC when the entry's
 * name carries the suffix "_nospc". BERTH_FAULTS is a comma-separated list:
 *
 *   upload_write:3          fail the 3rd call of upload_write (and no other)
 *   upload_write_nospc:3    the same, failing with ENOSPC
 *   db_commit:p0.1          fail each call with probability 0.1, decided by
 *                           a hash of BERTH_FAULT_SEED (default 0), the site
 *                           and the call's number: a run is reproducible as
 *                           long as the calls come in the same order
 *   gc_sweep:k3             kill the process (raise(SIGKILL), as kill -9) at
 *                           the 3rd call of gc_sweep instead of failing it
 *                           (any site takes kN)
 *
 * Calls are counted per site from process start, startup included (opening
 * the store commits one transaction; a fresh root fsyncs its directories).
 * Malformed entries are ignored. Sites: upload_write (before each write of
 * upload data), upload_fsync (before the fsync at commit), blob_link (before
 * link/rename into blobs/), dir_fsync (before fsync of a directory under
 * blobs/), db_commit (before COMMIT), gc_sweep (garbage collection, after
 * each blob or orphan file removed, before its batch commits).
 *
 * Thread-safe. When BERTH_FAULTS is unset the cost is one load and one
 * well-predicted branch.
 */
int berth_fault_check(const char *site);

#endif
