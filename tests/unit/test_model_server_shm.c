/* test_model_server_shm.c: inputs through shared memory (docs/protocol.md, "Shared memory"),
 * against the real `visiond model-server` process ($VISIOND): the client library's region
 * gives the answers the socket gives, and the server refuses every region and reference that
 * breaks the rules with a clear error, keeps no descriptor it was not asked to keep, and
 * keeps a region mapped while a request still uses it. */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>

#include <dirent.h>

#include "core/err.h"
#include "infer/client.h"
#include "infer/proto.h"
#include "srvtest.h"
#include "vdtest.h"

/* ---- fixtures ---- */

/* A client with shared memory on (the default) or off ($VISIOND_INFER_SHM=0 when made). */
static vd_infer_client *client(const server *s, int shm)
{
    if (!shm) setenv("VISIOND_INFER_SHM", "0", 1);
    vd_infer_client *c = NULL;
    vd_error err;
    vd_status st = vd_infer_client_new(s->addr, &c, &err);
    unsetenv("VISIOND_INFER_SHM");
    return st == VD_OK ? c : NULL;
}

/* A tiny input of n items (n >= 86 is over the client's 64 KiB threshold). */
static int tiny_input(vd_tensor *t, int64_t n, unsigned seed)
{
    int64_t shape[4] = {n, 8, 8, 3};
    if (vd_tensor_alloc(t, shape, 4, NULL) != VD_OK) return 0;
    fill_item(t->data, vd_tensor_count(t), seed);
    return 1;
}

/* Whether the server process maps the client's region (its memfd's name). */
static int server_maps_region(const server *s)
{
    char p[64], line[512];
    snprintf(p, sizeof p, "/proc/%d/maps", (int)s->pid);
    FILE *f = fopen(p, "r");
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, "visiond-infer") != NULL;
    if (f) fclose(f);
    return found;
}

static int open_fds(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(p);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

/* Writes frame b on fd, with pass (>= 0) beside it as SCM_RIGHTS. */
static int send_frame_fd(int fd, const vd_buf *b, int pass)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {b->data, b->len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (pass >= 0) {
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &pass, sizeof pass);
    }
    return sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)b->len;
}

/* A memfd of size bytes, sealed against shrinking when sealed; mapped into *map. */
static int region(size_t size, int sealed, uint8_t **map)
{
    int fd = memfd_create("visiond-infer-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) return -1;
    if (sealed && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) != 0) return -1;
    *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return *map == MAP_FAILED ? -1 : fd;
}

/* Sends ATTACH of size with pass; returns the answer's status, msg its text. */
static int attach(int fd, uint64_t size, int pass, char *msg, size_t msgsz)
{
    vd_buf b = {0};
    int ok = vd_proto_encode_attach(&b, 1, size, NULL) == VD_OK && send_frame_fd(fd, &b, pass);
    vd_buf_free(&b);
    return ok ? raw_response(fd, msg, msgsz) : -1;
}

/* Sends INFER_SHM for t (its shape) at offset on model. */
static int infer_ref(int fd, const char *model, const vd_tensor *t, uint64_t offset)
{
    vd_buf b = {0};
    int ok = vd_proto_encode_infer_ref(&b, 2, 0, model, t, offset, NULL) == VD_OK &&
             send_frame_fd(fd, &b, -1);
    vd_buf_free(&b);
    return ok;
}

/* ---- tests ---- */

/* The same inputs through the region and through the socket get the same answers: a tiny
 * batch over the threshold, a BlazeFace image, and a larger batch that makes the client
 * replace its region with a bigger one (and attach that). The server maps the region only
 * once a client with shared memory on has called. */
VD_TEST(an_input_in_shared_memory_gets_the_answer_the_socket_gets)
{
    const char *dir = srv_test_dir();
    if (!dir) return;
    server s;
    CHECK(server_start(&s, dir, NULL));
    vd_infer_client *sock = client(&s, 0), *shm = client(&s, 1);
    CHECK(sock && shm);
    int64_t sizes[3] = {100, 1, 6}; /* 6 BlazeFace images: 1.2 MB, over the first 1 MiB */
    const char *models[3] = {"tiny", "blazeface_front", "blazeface_front"};
    for (int k = 0; k < 3; k++) {
        vd_tensor t;
        vd_error err;
        if (k > 0) {
            int64_t shape[4] = {sizes[k], 128, 128, 3};
            CHECK_OK(vd_tensor_alloc(&t, shape, 4, &err));
            fill_item(t.data, vd_tensor_count(&t), 77);
        } else {
            CHECK(tiny_input(&t, sizes[k], 10u + (unsigned)k));
        }
        vd_infer_result want, got;
        CHECK_OK(vd_infer_client_infer(sock, models[k], &t, 30000, &want, &err));
        if (k == 0) CHECK(!server_maps_region(&s)); /* the socket client attached nothing */
        CHECK_OK(vd_infer_client_infer(shm, models[k], &t, 30000, &got, &err));
        CHECK(server_maps_region(&s));
        CHECK(same_outputs(&got, &want));
        vd_infer_result_free(&want);
        vd_infer_result_free(&got);
        vd_tensor_free(&t);
    }
    vd_infer_client_free(sock);
    vd_infer_client_free(shm);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

/* vd_infer_client_input lends the region for a large input on a Unix socket (no copy on the
 * call: the same answer as the socket's, twice from the same lent tensor, which keeps what it
 * holds), and gives an owned tensor for a small input or with shared memory off;
 * vd_tensor_free is safe on both. */
VD_TEST(a_lent_input_needs_no_copy_and_gets_the_same_answer)
{
    const char *dir = srv_test_dir();
    if (!dir) return;
    server s;
    CHECK(server_start(&s, dir, NULL));
    vd_infer_client *sock = client(&s, 0), *shm = client(&s, 1);
    CHECK(sock && shm);
    vd_error err;
    int64_t big[4] = {1, 128, 128, 3}, small[4] = {1, 8, 8, 3};
    vd_tensor lent, own, tiny, off;
    CHECK_OK(vd_infer_client_input(shm, big, 4, &lent, &err));
    CHECK(lent.borrowed && vd_tensor_bytes(&lent) == 128 * 128 * 3 * 4);
    CHECK_OK(vd_infer_client_input(shm, small, 4, &tiny, &err));
    CHECK(!tiny.borrowed); /* under the threshold: the caller's own */
    CHECK_OK(vd_infer_client_input(sock, big, 4, &off, &err));
    CHECK(!off.borrowed);
    fill_item(lent.data, vd_tensor_count(&lent), 31);
    CHECK_OK(vd_tensor_alloc(&own, big, 4, &err));
    memcpy(own.data, lent.data, vd_tensor_bytes(&own));
    vd_infer_result want, got, again;
    CHECK_OK(vd_infer_client_infer(sock, "blazeface_front", &own, 30000, &want, &err));
    CHECK_OK(vd_infer_client_infer(shm, "blazeface_front", &lent, 30000, &got, &err));
    CHECK_OK(vd_infer_client_infer(shm, "blazeface_front", &lent, 30000, &again, &err));
    CHECK(same_outputs(&got, &want) && same_outputs(&again, &want));
    CHECK(memcmp(lent.data, own.data, vd_tensor_bytes(&own)) == 0);
    vd_infer_result_free(&want);
    vd_infer_result_free(&got);
    vd_infer_result_free(&again);
    vd_tensor_free(&lent);
    CHECK(lent.raw == NULL);
    vd_tensor_free(&tiny);
    vd_tensor_free(&off);
    vd_tensor_free(&own);
    vd_infer_client_free(sock);
    vd_infer_client_free(shm);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

/* Each broken rule gets its own error on a connection that stays open, and a correct
 * reference after them is answered. */
VD_TEST(regions_and_references_that_break_the_rules_get_clear_errors)
{
    const char *dir = srv_test_dir();
    if (!dir) return;
    server s;
    const char *args[] = {"--max-frame", "4194304", NULL};
    CHECK(server_start(&s, dir, args));
    int fd = raw_connect(s.sock);
    CHECK(fd >= 0);
    vd_tensor t;
    CHECK(tiny_input(&t, 100, 5));
    size_t bytes = vd_tensor_bytes(&t);
    char msg[512];

    CHECK(infer_ref(fd, "tiny", &t, 0));
    CHECK_EQ_INT(raw_response(fd, msg, sizeof msg), VD_ERR_STATE);
    CHECK(strstr(msg, "before ATTACH") != NULL);

    CHECK_EQ_INT(attach(fd, 1 << 20, -1, msg, sizeof msg), VD_ERR_INVALID);
    CHECK(strstr(msg, "without a descriptor") != NULL);

    uint8_t *loose_map, *map;
    int loose = region(1 << 20, 0, &loose_map), good = region(1 << 20, 1, &map);
    CHECK(loose >= 0 && good >= 0);
    CHECK_EQ_INT(attach(fd, 1 << 20, loose, msg, sizeof msg), VD_ERR_INVALID);
    CHECK(strstr(msg, "F_SEAL_SHRINK") != NULL);
    CHECK_EQ_INT(attach(fd, 2 << 20, good, msg, sizeof msg), VD_ERR_INVALID);
    CHECK(strstr(msg, "smaller than") != NULL);
    CHECK_EQ_INT(attach(fd, 8 << 20, good, msg, sizeof msg), VD_ERR_LIMIT);
    CHECK_EQ_INT(attach(fd, 1 << 20, good, msg, sizeof msg), VD_OK);

    memcpy(map + 4096, t.data, bytes);
    CHECK(infer_ref(fd, "tiny", &t, (1 << 20) - 4096));
    CHECK_EQ_INT(raw_response(fd, msg, sizeof msg), VD_ERR_INVALID);
    CHECK(strstr(msg, "outside the region") != NULL);
    CHECK(infer_ref(fd, "tiny", &t, 4096 + 8));
    CHECK_EQ_INT(raw_response(fd, msg, sizeof msg), VD_ERR_INVALID);
    CHECK(strstr(msg, "multiple of 64") != NULL);
    CHECK(infer_ref(fd, "tiny", &t, UINT64_MAX - 63));
    CHECK_EQ_INT(raw_response(fd, msg, sizeof msg), VD_ERR_INVALID);

    vd_infer_client *c = client(&s, 0);
    vd_infer_result want, got;
    vd_error err;
    CHECK_OK(vd_infer_client_infer(c, "tiny", &t, 30000, &want, &err));
    CHECK(infer_ref(fd, "tiny", &t, 4096));
    CHECK_EQ_INT(raw_outputs(fd, &got), VD_OK);
    CHECK(same_outputs(&got, &want));
    vd_infer_result_free(&got);
    vd_infer_result_free(&want);
    vd_infer_client_free(c);
    munmap(loose_map, 1 << 20);
    munmap(map, 1 << 20);
    close(loose);
    close(good);
    close(fd);
    vd_tensor_free(&t);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

/* Descriptors sent beside frames that are not ATTACH are not piled up: the server holds at
 * most one per connection, and none once the connection is gone. */
VD_TEST(descriptors_sent_with_other_frames_are_not_kept)
{
    const char *dir = srv_test_dir();
    if (!dir) return;
    server s;
    CHECK(server_start(&s, dir, NULL));
    int before = open_fds(s.pid);
    int fd = raw_connect(s.sock);
    CHECK(fd >= 0);
    vd_buf health = {0};
    vd_error err;
    CHECK_OK(vd_proto_frame(&health, VD_OP_HEALTH, 3, 0, NULL, 0, &err));
    for (int i = 0; i < 200; i++) {
        uint8_t *map;
        int m = region(4096, 1, &map);
        CHECK(m >= 0);
        CHECK(send_frame_fd(fd, &health, m));
        CHECK_EQ_INT(raw_response(fd, NULL, 0), VD_OK);
        munmap(map, 4096);
        close(m);
    }
    CHECK(open_fds(s.pid) <= before + 2); /* the connection and the one descriptor kept */
    close(fd);
    int after = open_fds(s.pid);
    for (int i = 0; i < 100 && after > before; i++) { /* the server sees the close soon */
        usleep(10000);
        after = open_fds(s.pid);
    }
    CHECK_EQ_INT(after, before);
    vd_buf_free(&health);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

/* A request whose region is replaced (a new ATTACH) and whose connection then closes while
 * it waits for its batch still runs on its own data: the region stays mapped until the
 * request ends. The answer of a second request, sent on a new connection meanwhile, shows
 * the server alive and right. */
VD_TEST(a_region_stays_mapped_while_a_request_uses_it)
{
    const char *dir = srv_test_dir();
    if (!dir) return;
    server s;
    CHECK(server_start(&s, dir, NULL));
    vd_tensor t;
    CHECK(tiny_input(&t, 1, 9)); /* tiny_slow waits up to 1.5 s to fill a batch of 4 */
    size_t bytes = vd_tensor_bytes(&t);
    int fd = raw_connect(s.sock);
    CHECK(fd >= 0);
    uint8_t *map, *map2;
    int r1 = region(1 << 20, 1, &map), r2 = region(1 << 20, 1, &map2);
    CHECK(r1 >= 0 && r2 >= 0);
    CHECK_EQ_INT(attach(fd, 1 << 20, r1, NULL, 0), VD_OK);
    memcpy(map, t.data, bytes);
    CHECK(infer_ref(fd, "tiny_slow", &t, 0));
    CHECK_EQ_INT(attach(fd, 1 << 20, r2, NULL, 0), VD_OK);
    munmap(map, 1 << 20);
    close(r1);
    close(fd);
    /* a second connection asks the same through the socket, after the first request */
    vd_infer_client *c = client(&s, 0);
    vd_infer_result got;
    vd_error err;
    CHECK_OK(vd_infer_client_infer(c, "tiny_slow", &t, 30000, &got, &err));
    vd_infer_result want;
    CHECK_OK(vd_infer_client_infer(c, "tiny", &t, 30000, &want, &err)); /* the same graph */
    CHECK(same_outputs(&got, &want));
    vd_infer_result_free(&got);
    vd_infer_result_free(&want);
    vd_infer_client_free(c);
    munmap(map2, 1 << 20);
    close(r2);
    vd_tensor_free(&t);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    atexit(kill_live_servers);
    return vd_test_run_all();
}
