/* SPDX-License-Identifier: MIT */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "outbox.h"
#include "shared/json-util.h"
#include "shared/time-util.h"

int outbox_activity_status(ActivityState s)
{
        switch (s) {
        case ACTIVITY_SUCCEEDED:
                return 1;
        case ACTIVITY_FAILED:
                return 2;
        case ACTIVITY_CANCELLED:
                return 3;
        case ACTIVITY_TIMED_OUT:
                return 4;
        case ACTIVITY_SKIPPED:
                return 5;
        default:
                return 0;
        }
}

int outbox_run_status(RunState s)
{
        switch (s) {
        case RUN_SUCCEEDED:
                return 1;
        case RUN_FAILED:
                return 2;
        case RUN_CANCELLED:
                return 3;
        case RUN_TIMED_OUT:
                return 4;
        default:
                return 0;
        }
}

int base64_encode(const void *data, size_t size, char **ret)
{
        _cleanup_free_ char *out = malloc(4 * ((size + 2) / 3) + 1);
        int n;

        if (!out)
                return -ENOMEM;
        if (size > INT32_MAX)
                return -E2BIG;
        n = EVP_EncodeBlock((unsigned char *) out, data, (int) size);
        if (n < 0)
                return -EINVAL;
        out[n] = 0;
        *ret = TAKE_PTR(out);
        return 0;
}

int outbox_signature(const void *secret, size_t secret_size, const void *body, size_t body_size,
                     char **ret)
{
        uint8_t mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        char *s;

        if (secret_size > INT32_MAX)
                return -E2BIG;
        if (!HMAC(EVP_sha256(), secret, (int) secret_size, body, body_size, mac, &mac_len))
                return -EIO;
        s = malloc(strlen("sha256=") + 2 * mac_len + 1);
        if (!s)
                return -ENOMEM;
        strcpy(s, "sha256=");
        for (unsigned i = 0; i < mac_len; i++)
                snprintf(s + strlen("sha256=") + 2 * i, 3, "%02x", mac[i]);
        *ret = s;
        return 0;
}

uint64_t outbox_backoff_usec(uint64_t initial, uint64_t max, unsigned attempts, uint32_t r)
{
        uint64_t d = initial;

        for (unsigned i = 1; i < attempts && d < max; i++)
                d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
        d = MIN(d, max);
        /* "Equal jitter": half of the delay is fixed, the other half random, so retries of
         * many deliveries that failed together spread out, yet never come back at once. */
        return d / 2 + (uint64_t) ((double) (d - d / 2) * ((double) r / (double) UINT32_MAX));
}

static json_object *time_or_null(uint64_t usec)
{
        char buf[32];

        if (usec == 0)
                return NULL;
        return json_object_new_string(format_rfc3339(buf, usec, false));
}

static int payload_finish(const char *type, json_object *data, char **ret)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        const char *text;
        char *s;

        if (!o) {
                json_object_put(data);
                return -ENOMEM;
        }
        json_object_object_add(o, "type", json_object_new_string(type));
        json_object_object_add(o, "data", data);
        /* Laid out as AkoFlow's documentation shows it: two-space indent, "key": value. */
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        s = strdup(text);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int outbox_activity_payload(const Activity *a, const char *unit_json, int64_t depends_on_id,
                            char **ret)
{
        const Run *run = a->run;
        const char *image = a->step->image ?: (run->flow ? run->flow->image : NULL);
        _cleanup_free_ char *resource = NULL;
        json_object *d;
        int r;

        if (unit_json) {
                r = base64_encode(unit_json, strlen(unit_json), &resource);
                if (r < 0)
                        return r;
        }

        d = json_object_new_object();
        if (!d)
                return -ENOMEM;
        json_object_object_add(d, "Id", json_object_new_int64(a->id));
        json_object_object_add(d, "WorkflowId", json_object_new_int64(run->id));
        json_object_object_add(d, "Namespace", json_object_new_string(strempty(run->ns)));
        json_object_object_add(d, "Name", json_object_new_string(a->step->name));
        json_object_object_add(d, "Image", json_object_new_string(strempty(image)));
        json_object_object_add(d, "ResourceK8sBase64", json_object_new_string(strempty(resource)));
        json_object_object_add(d, "Status", json_object_new_int(outbox_activity_status(a->state)));
        json_object_object_add(d, "ProcId", a->unit ? json_object_new_string(a->unit) : NULL);
        json_object_object_add(d, "DependOnActivity",
                               depends_on_id > 0 ? json_object_new_int64(depends_on_id) : NULL);
        json_object_object_add(d, "CreatedAt", time_or_null(a->created_usec));
        json_object_object_add(d, "StartedAt", time_or_null(a->started_usec));
        json_object_object_add(d, "FinishedAt", time_or_null(a->finished_usec));
        return payload_finish(OUTBOX_EVENT_ACTIVITY_COMPLETED, d, ret);
}

int outbox_workflow_payload(const Run *run, const char *raw_yaml, char **ret)
{
        const char *runtime = run->flow ? run->flow->runtime : NULL;
        _cleanup_free_ char *raw = NULL;
        json_object *d;
        int r;

        raw_yaml = raw_yaml ?: strempty(run->flow ? run->flow->raw_yaml : NULL);
        r = base64_encode(raw_yaml, strlen(raw_yaml), &raw);
        if (r < 0)
                return r;

        d = json_object_new_object();
        if (!d)
                return -ENOMEM;
        json_object_object_add(d, "ID", json_object_new_int64(run->id));
        json_object_object_add(d, "Namespace", json_object_new_string(strempty(run->ns)));
        /* A flow that names no runtime runs on the host: the "local" runtime. */
        json_object_object_add(d, "Runtime", json_object_new_string(runtime ?: "local"));
        json_object_object_add(d, "Name", json_object_new_string(strempty(run->flow_name)));
        json_object_object_add(d, "RawWorkflow", json_object_new_string(raw));
        json_object_object_add(d, "Status", json_object_new_int(outbox_run_status(run->state)));
        return payload_finish(OUTBOX_EVENT_WORKFLOW_DONE, d, ret);
}
