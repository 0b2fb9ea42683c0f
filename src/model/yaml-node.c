/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <math.h>
#include <strings.h>

#include "shared/json-util.h"
#include "yaml-node.h"

yaml_node_t *yaml_map_get(yaml_document_t *doc, yaml_node_t *map, const char *key,
                          yaml_node_t **ret_key)
{
        if (!map || map->type != YAML_MAPPING_NODE)
                return NULL;
        YAML_MAP_FOREACH(p, map) {
                yaml_node_t *k = yaml_document_get_node(doc, p->key);
                if (streq_ptr(yaml_scalar(k), key)) {
                        if (ret_key)
                                *ret_key = k;
                        return yaml_document_get_node(doc, p->value);
                }
        }
        return NULL;
}

bool yaml_scalar_is_plain(const yaml_node_t *n)
{
        return n && n->type == YAML_SCALAR_NODE &&
               (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ||
                n->data.scalar.style == YAML_ANY_SCALAR_STYLE);
}

bool yaml_scalar_is_null(yaml_node_t *n)
{
        const char *s = yaml_scalar(n);
        return s && yaml_scalar_is_plain(n) &&
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
        static const char *const yes[] = { "true", "yes", "on" };
        static const char *const no[] = { "false", "no", "off" };
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

static int scalar_to_json(yaml_node_t *n, json_object **ret)
{
        const char *s = (const char *) n->data.scalar.value;
        json_object *o = NULL;
        int64_t i;
        bool b;

        if (yaml_scalar_is_null(n)) {
                *ret = NULL;
                return 0;
        }
        if (!yaml_scalar_is_plain(n))
                o = json_object_new_string_len(s, (int) n->data.scalar.length);
        else if (yaml_scalar_to_int64(n, &i) >= 0)
                o = json_object_new_int64(i);
        else if (yaml_scalar_to_bool(n, &b) >= 0)
                o = json_object_new_boolean(b);
        else {
                char *end = NULL;
                double d = 0;

                /* Only what reads as a finite decimal number is one: JSON has no inf or nan. */
                if (isdigit((unsigned char) *s) || *s == '-' || *s == '+' || *s == '.') {
                        errno = 0;
                        d = strtod(s, &end);
                }
                if (end && end != s && *end == 0 && errno == 0 && isfinite(d) &&
                    !strpbrk(s, "xXpP"))
                        o = json_object_new_double(d);
                else
                        o = json_object_new_string_len(s, (int) n->data.scalar.length);
        }
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

static int node_to_json(yaml_document_t *doc, yaml_node_t *n, unsigned depth, size_t *budget,
                        json_object **ret, yaml_node_t **ret_bad)
{
        _cleanup_(json_object_putp) json_object *o = NULL;
        int r;

#define FAIL(node, e)                                                                             \
        do {                                                                                      \
                if (ret_bad)                                                                      \
                        *ret_bad = (node);                                                        \
                return (e);                                                                       \
        } while (0)

        if (!n) {
                *ret = NULL;
                return 0;
        }
        if (depth >= YAML_JSON_DEPTH_MAX)
                FAIL(n, -ELOOP);
        if (*budget == 0)
                FAIL(n, -E2BIG);
        (*budget)--;

        switch (n->type) {
        case YAML_SCALAR_NODE:
                return scalar_to_json(n, ret);

        case YAML_SEQUENCE_NODE:
                o = json_object_new_array();
                if (!o)
                        return -ENOMEM;
                YAML_SEQ_FOREACH(it, n) {
                        json_object *v = NULL;
                        r = node_to_json(doc, yaml_document_get_node(doc, *it), depth + 1, budget,
                                         &v, ret_bad);
                        if (r < 0)
                                return r;
                        if (json_object_array_add(o, v) < 0) {
                                json_object_put(v);
                                return -ENOMEM;
                        }
                }
                break;

        case YAML_MAPPING_NODE:
                o = json_object_new_object();
                if (!o)
                        return -ENOMEM;
                YAML_MAP_FOREACH(p, n) {
                        yaml_node_t *k = yaml_document_get_node(doc, p->key);
                        const char *key = yaml_scalar(k);
                        json_object *v = NULL;

                        if (!key)
                                FAIL(k ?: n, -EINVAL);
                        if (json_object_object_get_ex(o, key, NULL))
                                FAIL(k, -EEXIST);
                        r = node_to_json(doc, yaml_document_get_node(doc, p->value), depth + 1,
                                         budget, &v, ret_bad);
                        if (r < 0)
                                return r;
                        if (json_object_object_add(o, key, v) < 0) {
                                json_object_put(v);
                                return -ENOMEM;
                        }
                }
                break;

        default:
                FAIL(n, -EINVAL);
        }
#undef FAIL

        *ret = TAKE_PTR(o);
        return 0;
}

int yaml_node_to_json(yaml_document_t *doc, yaml_node_t *n, json_object **ret,
                      yaml_node_t **ret_bad)
{
        size_t budget = YAML_JSON_VALUES_MAX;
        return node_to_json(doc, n, 0, &budget, ret, ret_bad);
}

static bool utf8_continuation(char c)
{
        return ((unsigned char) c & 0xC0) == 0x80;
}

void text_cursor_init(TextCursor *c, const char *text, size_t len)
{
        *c = (TextCursor){ .text = text, .len = len };
}

size_t text_cursor_seek(TextCursor *c, size_t index)
{
        while (c->chars < index && c->bytes < c->len) {
                c->bytes++;
                while (c->bytes < c->len && utf8_continuation(c->text[c->bytes]))
                        c->bytes++;
                c->chars++;
        }
        while (c->chars > index && c->bytes > 0) {
                c->bytes--;
                while (c->bytes > 0 && utf8_continuation(c->text[c->bytes]))
                        c->bytes--;
                c->chars--;
        }
        return c->bytes;
}

static bool blank(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool block_style(yaml_scalar_style_t s)
{
        return s == YAML_LITERAL_SCALAR_STYLE || s == YAML_FOLDED_SCALAR_STYLE;
}

/* Length of the escape sequence at s (which starts with a backslash) in a double-quoted scalar,
 * and whether what it stands for is blank in the value. */
static size_t escape_length(const char *s, size_t left, bool *ret_blank)
{
        size_t n = 2;

        *ret_blank = false;
        if (left < 2)
                return left;
        switch (s[1]) {
        case 'x':
                n = 4;
                break;
        case 'u':
                n = 6;
                break;
        case 'U':
                n = 10;
                break;
        case 't':
        case 'n':
        case 'r':
        case ' ':
        case '\t':
                *ret_blank = true;
                break;
        default:
                break;
        }
        return MIN(n, left);
}

void yaml_scalar_locate(TextCursor *c, const yaml_node_t *n, size_t offset, unsigned *ret_line,
                        unsigned *ret_column)
{
        const char *v = (const char *) n->data.scalar.value;
        bool sq = n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE;
        bool dq = n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        size_t want = 0, seen = 0, i, end;
        size_t line = n->start_mark.line, col = n->start_mark.column;
        size_t after_line = line, after_col = col;

        /* The value and its source hold the same visible characters in the same order, whatever
         * folding, indentation and quoting did to the blanks: find the one wanted by count. */
        for (size_t k = 0; k < offset && k < n->data.scalar.length; k++)
                if (!blank(v[k]) && !utf8_continuation(v[k]))
                        want++;

        i = text_cursor_seek(c, n->start_mark.index);
        end = text_cursor_seek(c, n->end_mark.index);
        if (block_style(n->data.scalar.style)) {
                /* The content starts on the line after the indicator and its comment. */
                while (i < end && c->text[i] != '\n')
                        i++;
                if (i < end) {
                        i++;
                        line++;
                        col = 0;
                }
        } else if ((sq || dq) && i < end) {
                i++;
                col++;
        }
        after_line = line;
        after_col = col;

        while (i < end) {
                char ch = c->text[i];
                size_t len = 1, width = 1;
                bool visible = true;

                if (ch == '\n' || ch == '\r') {
                        i += ch == '\r' && i + 1 < end && c->text[i + 1] == '\n' ? 2 : 1;
                        line++;
                        col = 0;
                        continue;
                }
                if (dq && ch == '"')
                        break; /* the closing quote */
                if (sq && ch == '\'') {
                        if (i + 1 >= end || c->text[i + 1] != '\'')
                                break;
                        len = width = 2; /* '' stands for one quote */
                } else if (dq && ch == '\\') {
                        bool b = false;
                        if (i + 1 < end && (c->text[i + 1] == '\n' || c->text[i + 1] == '\r'))
                                visible = false; /* an escaped line break */
                        else {
                                len = width = escape_length(c->text + i, end - i, &b);
                                visible = !b;
                        }
                } else if (blank(ch))
                        visible = false;
                else
                        while (i + len < end && utf8_continuation(c->text[i + len]))
                                len++;

                if (visible) {
                        if (seen == want) {
                                *ret_line = (unsigned) line + 1;
                                *ret_column = (unsigned) col + 1;
                                return;
                        }
                        seen++;
                        after_line = line;
                        after_col = col + width;
                }
                col += width;
                i += len;
        }

        *ret_line = (unsigned) after_line + 1;
        *ret_column = (unsigned) after_col + 1;
}
