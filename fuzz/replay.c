/*
 * Corpus replayer: a plain main() that feeds files to a fuzz target's
 * LLVMFuzzerTestOneInput, so the corpora run under gcc (and its sanitizers)
 * in every `make test` without libFuzzer. Arguments are files or directories
 * (recursive); with none, fuzz/corpus/<target>/ is replayed, where <target> is
 * the binary's basename without "-replay" and the repo root is $BERTH_SRC,
 * else two levels above the binary (build/fuzz/), else the working directory.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_path(const char *path, size_t *count);

static int replay_file(const char *path, size_t *count)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL, *tmp;
    size_t len = 0, cap = 0, n;
    int error = -1;

    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            if ((tmp = realloc(buf, cap)) == NULL)
                goto done;
            buf = tmp;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "replay: %s: read error\n", path);
        goto done;
    }
    /* an exact-size copy, so ASan catches reads past the input */
    if ((tmp = malloc(len ? len : 1)) == NULL)
        goto done;
    memcpy(tmp, buf, len);
    LLVMFuzzerTestOneInput(tmp, len);
    free(tmp);
    (*count)++;
    error = 0;
done:
    free(buf);
    fclose(f);
    return error;
}

static int replay_dir(const char *path, size_t *count)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char child[PATH_MAX];
    int error = 0;

    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (snprintf(child, sizeof(child), "%s/%s", path, e->d_name) >= (int)sizeof(child))
            continue;
        if (replay_path(child, count) < 0)
            error = -1;
    }
    closedir(d);
    return error;
}

static int replay_path(const char *path, size_t *count)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode))
        return replay_dir(path, count);
    return replay_file(path, count);
}

static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int main(int argc, char **argv)
{
    char target[256], dir[PATH_MAX], self[PATH_MAX];
    const char *base = strrchr(argv[0], '/'), *src;
    size_t count = 0, n;
    char *slash;
    int i, error = 0;

    base = base ? base + 1 : argv[0];
    snprintf(target, sizeof(target), "%s", base);
    n = strlen(target);
    if (n > 7 && strcmp(target + n - 7, "-replay") == 0)
        target[n - 7] = '\0';

    if (argc > 1) {
        for (i = 1; i < argc; i++)
            if (replay_path(argv[i], &count) < 0)
                error = 1;
    } else {
        if ((src = getenv("BERTH_SRC")) != NULL && *src) {
            if (snprintf(dir, sizeof(dir), "%s/fuzz/corpus/%s", src, target) >= (int)sizeof(dir))
                dir[0] = '\0';
        } else {
            /* build/fuzz/<target>-replay: the repo root is two levels up */
            if (snprintf(self, sizeof(self), "%s", argv[0]) >= (int)sizeof(self) ||
                (slash = strrchr(self, '/')) == NULL)
                snprintf(self, sizeof(self), ".");
            else
                *slash = '\0';
            if (snprintf(dir, sizeof(dir), "%s/../../fuzz/corpus/%s", self, target) >=
                    (int)sizeof(dir) ||
                !is_dir(dir))
                snprintf(dir, sizeof(dir), "fuzz/corpus/%s", target);
        }
        if (!is_dir(dir)) {
            fprintf(stderr, "replay: no corpus directory %s\n", dir);
            return 1;
        }
        if (replay_path(dir, &count) < 0)
            error = 1;
    }
    printf("%s: %zu inputs replayed\n", target, count);
    return error;
}
