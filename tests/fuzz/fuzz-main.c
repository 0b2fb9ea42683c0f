/* SPDX-License-Identifier: MIT */
/* A small driver for the fuzz targets where libFuzzer is absent: runs every file of the corpus
 * directories given, then a bounded number of deterministic mutations of them (byte flips,
 * insertions, truncations, splices), so the fuzzers run as ordinary tests. */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

typedef struct Input {
        uint8_t *data;
        size_t size;
} Input;

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

static int load(const char *path, Input *in)
{
        FILE *f = fopen(path, "re");
        long n;
        if (!f)
                return -1;
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        in->data = malloc((size_t) n + 1);
        in->size = in->data ? fread(in->data, 1, (size_t) n, f) : 0;
        fclose(f);
        return in->data ? 0 : -1;
}

static const char *const tokens[] = { ":", "-", " ", "\n", "{{", "}}", "*", "/", ",", "[", "]",
                                      "{", "}", "'", "\"", "&a", "*a", "!!str", "---", "#",
                                      "\t", "  ", "0", "99999999999", "@", "?" };

int main(int argc, char *argv[])
{
        Input corpus[512];
        size_t n = 0;
        unsigned iterations = (unsigned) atoi(getenv("FUZZ_ITERATIONS") ?: "3000");

        /* Deterministic by default so a failure reproduces; FUZZ_SEED explores further. */
        if (getenv("FUZZ_SEED"))
                rng_state ^= strtoull(getenv("FUZZ_SEED"), NULL, 0) * 0x100000001b3ULL + 1;

        for (int a = 1; a < argc; a++) {
                DIR *d = opendir(argv[a]);
                struct dirent *de;
                if (!d) {
                        if (n < ELEMENTSOF(corpus) && load(argv[a], &corpus[n]) == 0)
                                n++;
                        continue;
                }
                while ((de = readdir(d)) && n < ELEMENTSOF(corpus)) {
                        char p[4096];
                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(p, sizeof(p), "%s/%s", argv[a], de->d_name);
                        if (load(p, &corpus[n]) == 0)
                                n++;
                }
                closedir(d);
        }
        if (n == 0) {
                fprintf(stderr, "no corpus\n");
                return 1;
        }

        for (size_t i = 0; i < n; i++)
                LLVMFuzzerTestOneInput(corpus[i].data, corpus[i].size);

        for (unsigned it = 0; it < iterations; it++) {
                Input *src = &corpus[rng() % n];
                size_t cap = src->size * 2 + 64, size = src->size;
                uint8_t *buf = malloc(cap);
                unsigned edits = 1 + (unsigned) (rng() % 8);

                memcpy(buf, src->data, size);
                for (unsigned e = 0; e < edits; e++) {
                        size_t pos = size ? (size_t) (rng() % size) : 0;
                        switch (rng() % 5) {
                        case 0: /* flip */
                                if (size)
                                        buf[pos] ^= (uint8_t) (1u << (rng() % 8));
                                break;
                        case 1: { /* insert a token */
                                const char *t = tokens[rng() % ELEMENTSOF(tokens)];
                                size_t l = strlen(t);
                                if (size + l < cap) {
                                        memmove(buf + pos + l, buf + pos, size - pos);
                                        memcpy(buf + pos, t, l);
                                        size += l;
                                }
                                break;
                        }
                        case 2: /* truncate */
                                size = pos;
                                break;
                        case 3: /* delete a run */
                                if (size) {
                                        size_t want = (size_t) (rng() % 16);
                                        size_t l = MIN(want, size - pos);
                                        memmove(buf + pos, buf + pos + l, size - pos - l);
                                        size -= l;
                                }
                                break;
                        default: { /* splice from another input */
                                Input *o = &corpus[rng() % n];
                                size_t from = o->size ? (size_t) (rng() % o->size) : 0;
                                size_t l = MIN(o->size - from, cap - pos);
                                l = MIN(l, (size_t) 64);
                                memcpy(buf + pos, o->data + from, l);
                                size = MAX(size, pos + l);
                                break;
                        }
                        }
                }
                LLVMFuzzerTestOneInput(buf, size);
                free(buf);
        }
        printf("%u passed, 0 failed\n", (unsigned) n + iterations);
        for (size_t i = 0; i < n; i++)
                free(corpus[i].data);
        return 0;
}
