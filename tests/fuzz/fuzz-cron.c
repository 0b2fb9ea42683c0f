/* SPDX-License-Identifier: MIT */
/* Fuzzes the cron parser and its OnCalendar= conversion. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "model/cron.h"
#include "shared/strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(cron_freep) CronExpr *c = NULL;
        _cleanup_free_ char *err = NULL, *text = NULL;
        size_t offset = 0;

        if (size > 4096)
                return 0;
        /* Not strndup(): the input is not NUL-terminated, and strndup may read past size. */
        text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;

        if (cron_parse(text, &c, &err, &offset) < 0) {
                FUZZ_ASSERT(offset <= strlen(text));
                return 0;
        }
        char **lines = NULL;
        if (cron_to_on_calendar(c, &lines) >= 0) {
                FUZZ_ASSERT(lines && lines[0]);
                strv_free(lines);
        }
        time_t next;
        (void) cron_next(c, 1700000000, &next);
        return 0;
}
