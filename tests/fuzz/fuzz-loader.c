/* SPDX-License-Identifier: MIT */
/* Fuzzes the resource loader: any bytes must parse (or be refused) without crashing or leaking,
 * and every error must carry a position inside the input. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "model/loader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(diag_done) Diagnostics diags = {};
        ResourceDoc **docs = NULL;
        Registry *reg = NULL;
        size_t n = 0;
        char *text;

        if (size > 256 * 1024)
                return 0;
        text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;

        if (resource_text_parse("<fuzz>", text, size, &docs, &n, &diags) >= 0) {
                (void) registry_build(docs, n, NULL, &reg, &diags);
                registry_free(reg);
        }
        for (size_t i = 0; i < n; i++)
                resource_doc_free(docs[i]);
        free(docs);
        for (size_t i = 0; i < diags.n; i++)
                FUZZ_ASSERT(diags.items[i].line >= 1 && diags.items[i].column >= 1);
        free(text);
        return 0;
}
