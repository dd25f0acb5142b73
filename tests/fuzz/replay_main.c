/*
 * Replay driver: runs a fuzz target's LLVMFuzzerTestOneInput over every file of the directories
 * (or the files) named on the command line, in name order, so that the regression and seed
 * corpora run as ordinary tests in any build (gcc, no libFuzzer). A crash or an invariant
 * violation aborts, and the name of the input is printed first.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"

#define REPLAY_MAX_INPUT (16u * 1024u * 1024u)

static int run_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf;
    size_t n;

    if (fp == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    buf = cfw_xmalloc(REPLAY_MAX_INPUT);
    n = fread(buf, 1, REPLAY_MAX_INPUT, fp);
    if (ferror(fp) || !feof(fp)) {
        fprintf(stderr, "replay: %s: unreadable or larger than %u bytes\n", path,
                REPLAY_MAX_INPUT);
        fclose(fp);
        free(buf);
        return -1;
    }
    fclose(fp);
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
    /* an exact-size copy, so that a read past the end is caught as it is under libFuzzer */
    {
        uint8_t *exact = cfw_xmalloc(n > 0 ? n : 1);
        memcpy(exact, buf, n);
        free(buf);
        LLVMFuzzerTestOneInput(exact, n);
        free(exact);
    }
    return 0;
}

static int dot_filter(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

int main(int argc, char **argv)
{
    size_t inputs = 0;
    int failures = 0;

    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        struct dirent **names = NULL;
        int n;

        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s (skipped)\n", argv[i], strerror(errno));
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            failures += run_file(argv[i]) != 0;
            inputs++;
            continue;
        }
        n = scandir(argv[i], &names, dot_filter, alphasort);
        if (n < 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            failures++;
            continue;
        }
        for (int k = 0; k < n; k++) {
            char *path = cfw_xasprintf("%s/%s", argv[i], names[k]->d_name);

            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                failures += run_file(path) != 0;
                inputs++;
            }
            free(path);
            free(names[k]);
        }
        free(names);
    }
    printf("replay: %zu inputs replayed, %d unreadable\n", inputs, failures);
    return failures == 0 && inputs > 0 ? 0 : 1;
}
