/* SPDX-License-Identifier: MIT */
#include "model.h"
#include "shared/strv.h"

static const char *const resource_kind_table[_RESOURCE_KIND_MAX] = {
        [RESOURCE_FLOW] = "ArkFlow",
        [RESOURCE_TRIGGER] = "ArkEvent",
        [RESOURCE_WORKFLOW] = "Workflow",
};

static const char *const trigger_type_table[_TRIGGER_TYPE_MAX] = {
        [TRIGGER_WEBHOOK] = "webhook",
        [TRIGGER_CRON] = "cron",
        [TRIGGER_FLOW_OUTPUT] = "flow-output",
        [TRIGGER_TOPIC] = "topic",
};

static const char *const concurrency_policy_table[_CONCURRENCY_POLICY_MAX] = {
        [CONCURRENCY_ALLOW] = "Allow",
        [CONCURRENCY_FORBID] = "Forbid",
        [CONCURRENCY_REPLACE] = "Replace",
};

static const char *const on_phase_table[_ON_PHASE_MAX] = {
        [ON_PHASE_SUCCEEDED] = "Succeeded",
        [ON_PHASE_FAILED] = "Failed",
        [ON_PHASE_ANY] = "Any",
};

#define TABLE_LOOKUP(name, type, table, max)                                                      \
        const char *name##_to_string(type v)                                                      \
        {                                                                                         \
                return (int) v >= 0 && (int) v < (max) ? table[v] : NULL;                         \
        }                                                                                         \
        type name##_from_string(const char *s)                                                    \
        {                                                                                         \
                for (int i = 0; s && i < (max); i++)                                              \
                        if (table[i] && streq(table[i], s))                                       \
                                return (type) i;                                                  \
                return (type) -EINVAL;                                                            \
        }

const char *resource_kind_to_string(ResourceKind k)
{
        return (int) k >= 0 && k < _RESOURCE_KIND_MAX ? resource_kind_table[k] : NULL;
}

TABLE_LOOKUP(trigger_type, TriggerType, trigger_type_table, _TRIGGER_TYPE_MAX)
TABLE_LOOKUP(concurrency_policy, ConcurrencyPolicy, concurrency_policy_table,
             _CONCURRENCY_POLICY_MAX)
TABLE_LOOKUP(on_phase, OnPhase, on_phase_table, _ON_PHASE_MAX)

void source_loc_done(SourceLoc *loc)
{
        free(loc->file);
        loc->file = NULL;
}

Step *flow_find_step(const Flow *f, const char *name)
{
        for (size_t i = 0; i < f->n_steps; i++)
                if (streq_ptr(f->steps[i].name, name))
                        return &f->steps[i];
        return NULL;
}

void key_values_free(KeyValue *kv, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
        }
        free(kv);
}

static void volumes_free(Volume *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(v[i].host);
                free(v[i].target);
        }
        free(v);
}

static void step_done(Step *s)
{
        free(s->name);
        free(s->run);
        strv_free(s->command);
        strv_free(s->depends_on);
        free(s->if_expr);
        key_values_free(s->inputs, s->n_inputs);
        key_values_free(s->env, s->n_env);
        free(s->image);
        free(s->runtime);
        volumes_free(s->volumes, s->n_volumes);
        free(s->user);
        source_loc_done(&s->loc);
}

Flow *flow_ref(Flow *f)
{
        if (f)
                f->n_ref++;
        return f;
}

Flow *flow_free(Flow *f)
{
        if (!f)
                return NULL;
        if (f->n_ref > 1) {
                f->n_ref--;
                return NULL;
        }
        for (size_t i = 0; i < f->n_steps; i++)
                step_done(&f->steps[i]);
        free(f->steps);
        for (size_t i = 0; i < f->n_webhooks; i++) {
                free(f->webhooks[i].name);
                free(f->webhooks[i].url);
                free(f->webhooks[i].secret_file);
        }
        free(f->webhooks);
        json_object_put(f->input_defaults);
        free(f->namespace);
        free(f->name);
        free(f->output);
        free(f->event_topic);
        free(f->runtime);
        free(f->image);
        free(f->storage_policy);
        free(f->mount_path);
        volumes_free(f->volumes, f->n_volumes);
        free(f->raw_yaml);
        source_loc_done(&f->loc);
        free(f);
        return NULL;
}

Trigger *trigger_ref(Trigger *t)
{
        if (t)
                t->n_ref++;
        return t;
}

Trigger *trigger_free(Trigger *t)
{
        if (!t)
                return NULL;
        if (t->n_ref > 1) {
                t->n_ref--;
                return NULL;
        }
        free(t->namespace);
        free(t->name);
        free(t->cron);
        strv_free(t->on_calendar);
        free(t->flow);
        free(t->topic);
        free(t->hmac_secret_file);
        for (size_t i = 0; i < t->n_targets; i++) {
                free(t->targets[i].pipeline);
                json_object_put(t->targets[i].input);
                source_loc_done(&t->targets[i].loc);
        }
        free(t->targets);
        source_loc_done(&t->loc);
        source_loc_done(&t->source_loc);
        free(t);
        return NULL;
}

ResourceDoc *resource_doc_free(ResourceDoc *d)
{
        if (!d)
                return NULL;
        free(d->namespace);
        free(d->name);
        flow_free(d->flow);
        trigger_free(d->trigger);
        trigger_free(d->broken_trigger);
        source_loc_done(&d->loc);
        source_loc_done(&d->name_loc);
        free(d);
        return NULL;
}

Registry *registry_free(Registry *r)
{
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_flows; i++)
                flow_free(r->flows[i]);
        free(r->flows);
        for (size_t i = 0; i < r->n_triggers; i++)
                trigger_free(r->triggers[i]);
        free(r->triggers);
        free(r);
        return NULL;
}

Flow *registry_find_flow(const Registry *r, const char *ns, const char *name)
{
        for (size_t i = 0; r && i < r->n_flows; i++)
                if (streq(r->flows[i]->namespace, ns) && streq(r->flows[i]->name, name))
                        return r->flows[i];
        return NULL;
}

Trigger *registry_find_trigger(const Registry *r, const char *ns, const char *name)
{
        for (size_t i = 0; r && i < r->n_triggers; i++)
                if (streq(r->triggers[i]->namespace, ns) && streq(r->triggers[i]->name, name))
                        return r->triggers[i];
        return NULL;
}
