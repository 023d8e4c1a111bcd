/* server_shm.c: a client's shared-memory region (VD_OP_ATTACH), mapped by the I/O thread;
 * see server_impl.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "infer/server_impl.h"

vd_status vd_srv_shm_map(int fd, uint64_t size, uint64_t max, srv_shm **out, vd_error *err)
{
    *out = NULL;
    if (fd < 0)
        return vd_error_set(err, VD_ERR_INVALID,
                            "ATTACH came without a descriptor (send the memfd as SCM_RIGHTS "
                            "with the frame, over a Unix socket)");
    if (size == 0 || size > max)
        return vd_error_set(err, VD_ERR_LIMIT, "a region of %llu bytes: 1 to %llu are allowed",
                            (unsigned long long)size, (unsigned long long)max);
    /* the client must not be able to shrink the file under the mapping (a read past its end
     * would be SIGBUS in the server): only a memfd sealed against shrinking is taken */
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK))
        return vd_error_set(err, VD_ERR_INVALID,
                            "the region must be a memfd sealed with F_SEAL_SHRINK (%s)",
                            seals < 0 ? strerror(errno) : "it is not sealed");
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < size)
        return vd_error_set(err, VD_ERR_INVALID, "the region's file is smaller than %llu bytes",
                            (unsigned long long)size);
    srv_shm *m = calloc(1, sizeof *m);
    if (!m) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    /* private and writable: should anything write an input in place, it gets its own page
     * instead of a fault, and the client never sees it; unwritten pages stay the client's */
    void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        free(m);
        return vd_error_set(err, VD_ERR_NOMEM, "cannot map a region of %llu bytes: %s",
                            (unsigned long long)size, strerror(e));
    }
    m->base = p;
    m->size = (size_t)size;
    atomic_init(&m->refs, 1);
    *out = m;
    return VD_OK;
}

srv_shm *vd_srv_shm_ref(srv_shm *m)
{
    atomic_fetch_add(&m->refs, 1);
    return m;
}

void vd_srv_shm_unref(srv_shm *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1) return;
    munmap(m->base, m->size);
    free(m);
}

vd_status vd_srv_shm_view(srv_shm *m, uint64_t offset, uint64_t bytes, vd_tensor *input,
                          vd_error *err)
{
    if (!m)
        return vd_error_set(err, VD_ERR_STATE,
                            "INFER_SHM before ATTACH: this connection has no region");
    if (offset > m->size || bytes > m->size - offset)
        return vd_error_set(err, VD_ERR_INVALID,
                            "input of %llu bytes at offset %llu is outside the region of %zu",
                            (unsigned long long)bytes, (unsigned long long)offset, m->size);
    if (offset % 64)
        return vd_error_set(err, VD_ERR_INVALID, "input offset %llu is not a multiple of 64",
                            (unsigned long long)offset);
    input->raw = m->base + offset;
    input->block = NULL;
    return VD_OK;
}
