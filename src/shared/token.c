/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/random.h>

#include "fileio.h"
#include "token.h"

int token_generate(char **ret)
{
        uint8_t raw[32];
        char *hex;
        size_t got = 0;

        while (got < sizeof(raw)) {
                ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                got += (size_t) n;
        }
        hex = malloc(sizeof(raw) * 2 + 1);
        if (!hex)
                return -ENOMEM;
        for (size_t i = 0; i < sizeof(raw); i++)
                snprintf(hex + 2 * i, 3, "%02x", raw[i]);
        *ret = hex;
        return 0;
}

int token_load_or_create(const char *path, char **ret)
{
        _cleanup_free_ char *t = NULL;
        size_t n;
        int r;

        r = read_file_capped(path, 4096, &t, &n);
        if (r >= 0) {
                while (n > 0 && isspace((unsigned char) t[n - 1]))
                        t[--n] = 0;
                if (n >= 16) {
                        *ret = TAKE_PTR(t);
                        return 0;
                }
        } else if (r != -ENOENT)
                return r;

        free(TAKE_PTR(t));
        r = token_generate(&t);
        if (r < 0)
                return r;
        r = write_file_atomic(path, t, 0600);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 1;
}

bool token_equal(const char *a, const char *b)
{
        uint8_t da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];

        if (!a || !b)
                return false;
        SHA256((const uint8_t *) a, strlen(a), da);
        SHA256((const uint8_t *) b, strlen(b), db);
        return CRYPTO_memcmp(da, db, sizeof(da)) == 0;
}
