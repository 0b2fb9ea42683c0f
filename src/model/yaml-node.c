/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <strings.h>

#include "yaml-node.h"

yaml_node_t *yaml_map_get(yaml_document_t *doc, yaml_node_t *map, const char *key,
                          yaml_node_t **ret_key)
{
        if (!map || map->type != YAML_MAPPING_NODE)
                return NULL;
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
             p++) {
                yaml_node_t *k = yaml_document_get_node(doc, p->key);
                if (k && k->type == YAML_SCALAR_NODE && streq((const char *) k->data.scalar.value, key)) {
                        if (ret_key)
                                *ret_key = k;
                        return yaml_document_get_node(doc, p->value);
                }
        }
        return NULL;
}

static bool plain(yaml_node_t *n)
{
        return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ||
               n->data.scalar.style == YAML_ANY_SCALAR_STYLE;
}

bool yaml_scalar_is_null(yaml_node_t *n)
{
        const char *s = yaml_scalar(n);
        return s && plain(n) &&
               (!*s || streq(s, "~") || streq(s, "null") || streq(s, "Null") || streq(s, "NULL"));
}

int yaml_scalar_to_int64(yaml_node_t *n, int64_t *ret)
{
        const char *s = yaml_scalar(n);
        char *end;
        long long v;

        if (!s || !*s || isspace((unsigned char) *s))
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int yaml_scalar_to_bool(yaml_node_t *n, bool *ret)
{
        static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
        const char *s = yaml_scalar(n);

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

json_object *yaml_node_to_json(yaml_document_t *doc, yaml_node_t *n)
{
        if (!n)
                return NULL;
        switch (n->type) {
        case YAML_SCALAR_NODE: {
                const char *s = (const char *) n->data.scalar.value;
                int64_t i;
                bool b;
                char *end;
                if (!plain(n))
                        return json_object_new_string_len(s, (int) n->data.scalar.length);
                if (yaml_scalar_is_null(n))
                        return NULL;
                if (yaml_scalar_to_int64(n, &i) >= 0)
                        return json_object_new_int64(i);
                if (yaml_scalar_to_bool(n, &b) >= 0)
                        return json_object_new_boolean(b);
                if (*s && (isdigit((unsigned char) *s) || *s == '-' || *s == '.')) {
                        double d = strtod(s, &end);
                        if (*end == 0)
                                return json_object_new_double(d);
                }
                return json_object_new_string_len(s, (int) n->data.scalar.length);
        }
        case YAML_SEQUENCE_NODE: {
                json_object *a = json_object_new_array();
                for (yaml_node_item_t *it = n->data.sequence.items.start;
                     it < n->data.sequence.items.top; it++)
                        json_object_array_add(a, yaml_node_to_json(doc, yaml_document_get_node(doc, *it)));
                return a;
        }
        case YAML_MAPPING_NODE: {
                json_object *o = json_object_new_object();
                for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
                     p < n->data.mapping.pairs.top; p++) {
                        yaml_node_t *k = yaml_document_get_node(doc, p->key);
                        if (k && k->type == YAML_SCALAR_NODE)
                                json_object_object_add(
                                        o, (const char *) k->data.scalar.value,
                                        yaml_node_to_json(doc, yaml_document_get_node(doc, p->value)));
                }
                return o;
        }
        default:
                return NULL;
        }
}
