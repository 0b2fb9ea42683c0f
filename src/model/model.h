/* SPDX-License-Identifier: MIT */
#pragma once

/* The in-memory resource model: flows (ArkFlow and AkoFlow workflows map onto the same Flow) and
 * triggers (ArkEvent). Everything here is plain data, owned by its parent, freed with the
 * *_free() functions. Source positions are kept so later stages (cross-document checks, the
 * daemon's log) can still say file:line:column. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "shared/macro.h"

typedef struct SourceLoc {
        char *file;     /* path as given, or a pseudo name such as "<workflow>" */
        unsigned line;  /* 1-based */
        unsigned column; /* 1-based */
} SourceLoc;

typedef enum ResourceKind {
        RESOURCE_FLOW,    /* kind: ArkFlow */
        RESOURCE_TRIGGER, /* kind: ArkEvent */
        RESOURCE_WORKFLOW, /* AkoFlow workflow: name + spec.activities, no kind */
        _RESOURCE_KIND_MAX,
        _RESOURCE_KIND_INVALID = -EINVAL,
} ResourceKind;

typedef struct KeyValue {
        char *key;
        char *value; /* may hold {{ }} templates */
} KeyValue;

typedef struct Volume {
        char *host;
        char *target;
        bool read_only;
} Volume;

typedef struct Webhook {
        char *name;
        char *url;
        char *secret_file; /* optional: HMAC secret for X-Arkevent-Signature */
} Webhook;

typedef struct Step {
        char *name;
        char *run;      /* shell script (literal, never templated), or NULL */
        char **command; /* argv: entrypoint + arguments, NULL terminated, or NULL */
        char **depends_on; /* NULL terminated step names */
        char *if_expr;  /* template expression, or NULL */
        KeyValue *inputs;
        size_t n_inputs;
        KeyValue *env;
        size_t n_env;
        uint64_t timeout_usec; /* 0: none */
        unsigned retries_limit;
        uint64_t retries_backoff_usec;
        uint64_t cpu_millis;   /* cpuLimit in millicores; 0: unset. 1000 == CPUQuota=100% */
        uint64_t memory_bytes; /* memoryLimit; 0: unset */
        char *image;
        char *runtime;
        Volume *volumes;
        size_t n_volumes;
        char *user;
        SourceLoc loc;
} Step;

typedef struct Flow {
        unsigned n_ref; /* registries (old and new, across a reload) share resources */
        char *namespace;
        char *name;
        ResourceKind kind; /* RESOURCE_FLOW or RESOURCE_WORKFLOW */
        Step *steps;
        size_t n_steps;
        json_object *input_defaults; /* object, or NULL */
        char *output;                /* template, or NULL */
        uint64_t timeout_usec;
        unsigned concurrency; /* max parallel runs of this flow; 0: unlimited */
        Webhook *webhooks;
        size_t n_webhooks;
        char *event_topic; /* options.event */
        /* AkoFlow fields (also accepted on ArkFlow) */
        char *runtime;
        char *image;
        char *storage_policy; /* "default" or "ephemeral" */
        char *mount_path;
        Volume *volumes;
        size_t n_volumes;
        char *raw_yaml; /* the document's source text */
        SourceLoc loc;
} Flow;

typedef enum TriggerType {
        TRIGGER_WEBHOOK,
        TRIGGER_CRON,
        TRIGGER_FLOW_OUTPUT,
        TRIGGER_TOPIC,
        _TRIGGER_TYPE_MAX,
        _TRIGGER_TYPE_INVALID = -EINVAL,
} TriggerType;

typedef enum ConcurrencyPolicy {
        CONCURRENCY_ALLOW,
        CONCURRENCY_FORBID,
        CONCURRENCY_REPLACE,
        _CONCURRENCY_POLICY_MAX,
        _CONCURRENCY_POLICY_INVALID = -EINVAL,
} ConcurrencyPolicy;

typedef enum OnPhase {
        ON_PHASE_SUCCEEDED,
        ON_PHASE_FAILED,
        ON_PHASE_ANY,
        _ON_PHASE_MAX,
        _ON_PHASE_INVALID = -EINVAL,
} OnPhase;

typedef struct TriggerTarget {
        char *pipeline;     /* flow name, same namespace */
        json_object *input; /* object whose string leaves may hold templates, or NULL */
        SourceLoc loc;
} TriggerTarget;

typedef struct Trigger {
        unsigned n_ref;
        char *namespace;
        char *name;
        TriggerType type;
        char *cron;          /* 5-field expression as written (cron only) */
        char **on_calendar;  /* OnCalendar= lines (from cron or source.calendar), NULL terminated */
        char *flow;          /* upstream flow (flow-output only) */
        OnPhase on_phase;
        char *topic;         /* topic only */
        char *hmac_secret_file; /* webhook only, optional */
        TriggerTarget *targets;
        size_t n_targets;
        ConcurrencyPolicy concurrency_policy;
        bool suspended;
        SourceLoc loc;
        SourceLoc source_loc; /* of source.flow (flow-output), for cycle errors */
} Trigger;

/* One YAML document of a file, after parsing. A valid document carries its flow or trigger; a
 * broken one carries as much identity as could be read (kind, namespace, name may be NULL), so a
 * reload can keep the previous good version of that document in effect.
 *
 * When a file cannot be read to its end (a YAML syntax error, an unreadable file), a last
 * ResourceDoc with unreadable set stands for the rest: what the previous registry took from
 * that file and no readable document names stays in effect. */
typedef struct ResourceDoc {
        bool unreadable; /* a placeholder for the unreadable rest of loc.file, nothing else */
        ResourceKind kind; /* _RESOURCE_KIND_INVALID when unknown */
        char *namespace;
        char *name;
        Flow *flow;       /* valid flow or workflow */
        Trigger *trigger; /* valid trigger */
        /* What could be read of an invalid trigger, so that its references to flows are still
         * checked and reported with the rest of its problems; never put in effect. */
        Trigger *broken_trigger;
        unsigned n_errors;
        SourceLoc loc;      /* where the document starts */
        SourceLoc name_loc; /* of its name (metadata.name, or name: of a workflow), if any */
} ResourceDoc;

/* The set of resources in effect. */
typedef struct Registry {
        Flow **flows;
        size_t n_flows;
        Trigger **triggers;
        size_t n_triggers;
} Registry;

const char *resource_kind_to_string(ResourceKind k) _pure_;
const char *trigger_type_to_string(TriggerType t) _pure_;
TriggerType trigger_type_from_string(const char *s) _pure_;
const char *concurrency_policy_to_string(ConcurrencyPolicy p) _pure_;
ConcurrencyPolicy concurrency_policy_from_string(const char *s) _pure_;
const char *on_phase_to_string(OnPhase p) _pure_;
OnPhase on_phase_from_string(const char *s) _pure_;

void source_loc_done(SourceLoc *loc);
void key_values_free(KeyValue *kv, size_t n);
Step *flow_find_step(const Flow *f, const char *name);

/* flow_free() and trigger_free() drop one reference; the last one frees. */
Flow *flow_ref(Flow *f);
Flow *flow_free(Flow *f);
Trigger *trigger_ref(Trigger *t);
Trigger *trigger_free(Trigger *t);
ResourceDoc *resource_doc_free(ResourceDoc *d);
Registry *registry_free(Registry *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Flow *, flow_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(Trigger *, trigger_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(ResourceDoc *, resource_doc_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(Registry *, registry_free);

Flow *registry_find_flow(const Registry *r, const char *ns, const char *name);
Trigger *registry_find_trigger(const Registry *r, const char *ns, const char *name);
