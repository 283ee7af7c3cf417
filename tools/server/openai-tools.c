/* Tools and reasoning in OpenAI requests: "tools", "tool_choice", "reasoning_effort", and the
 * assistant's "tool_calls" / the "tool" role in the history. */
#include "server.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool fail(char *err, size_t cap, const char *msg, const char *field)
{
    snprintf(err, cap, "%s%s%s", field ? field : "", field ? ": " : "", msg);
    return false;
}

/* Each tool is {"type": "function", "function": {"name": ..., ...}} with a unique name. */
static bool check_tools(const cJSON *tools, char *err, size_t cap)
{
    if (!cJSON_IsArray(tools))
        return fail(err, cap, "must be an array of {\"type\": \"function\", \"function\": {...}}", "tools");
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "type");
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") || !cJSON_IsString(name) ||
            !name->valuestring[0] || (params && !cJSON_IsObject(params))) {
            snprintf(err, cap, "tools[%d]: needs \"type\": \"function\" and a \"function\" with a \"name\" (and an "
                     "object \"parameters\")", i);
            return false;
        }
        i++;
    }
    return true;
}

static const cJSON *find_tool(const cJSON *tools, const char *name)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "function"), "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
            return t;
    }
    return NULL;
}

static bool parse_choice(const cJSON *doc, const cJSON *tools, serve_request *r, char *err, size_t cap)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(doc, "tool_choice");
    r->tool_choice = tools ? TOOLS_AUTO : TOOLS_NONE;
    if (!c || cJSON_IsNull(c))
        return true;
    if (cJSON_IsString(c)) {
        static const char *const names[] = {"none", "auto", "required"};
        int k = -1;
        for (int i = 0; i < 3; i++)
            if (!strcmp(c->valuestring, names[i]))
                k = i;
        r->tool_choice = k == 1 && !tools ? TOOLS_NONE : (serve_tool_choice)k;
        if (k < 0)
            return fail(err, cap, "must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", "
                        "\"function\": {\"name\": ...}}", "tool_choice");
    } else {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "function"), "name");
        if (!cJSON_IsString(n))
            return fail(err, cap, "must name a function: {\"type\": \"function\", \"function\": {\"name\": ...}}",
                        "tool_choice");
        r->tool_choice = TOOLS_NAMED;
        r->tool_name = n->valuestring;
    }
    if (r->tool_choice >= TOOLS_REQUIRED && !tools)
        return fail(err, cap, "asks for a tool call but the request has no tools", "tool_choice");
    if (r->tool_choice == TOOLS_NAMED && !find_tool(tools, r->tool_name)) {
        snprintf(err, cap, "tool_choice: no tool named \"%.64s\" in tools", r->tool_name);
        return false;
    }
    return true;
}

/* reasoning_effort "none"/"minimal" (or chat_template_kwargs.enable_thinking false) turns
 * thinking off; "low", "medium", "high" (or true) on. Off unless asked. */
static bool parse_reasoning(const cJSON *doc, serve_request *r, char *err, size_t cap)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "reasoning_effort");
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(doc, "chat_template_kwargs");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(kw, "enable_thinking");
    if (e && !cJSON_IsNull(e)) {
        static const char *const on[] = {"low", "medium", "high"}, *const off[] = {"none", "minimal"};
        bool known = false;
        for (int i = 0; cJSON_IsString(e) && i < 3; i++)
            if (!strcmp(e->valuestring, on[i]))
                known = r->thinking = true;
        for (int i = 0; cJSON_IsString(e) && i < 2; i++)
            known |= !strcmp(e->valuestring, off[i]);
        if (!known)
            return fail(err, cap, "must be \"none\", \"minimal\", \"low\", \"medium\" or \"high\"", "reasoning_effort");
    }
    if (t && !cJSON_IsBool(t))
        return fail(err, cap, "must be true or false", "chat_template_kwargs.enable_thinking");
    if (t)
        r->thinking = cJSON_IsTrue(t);
    return true;
}

bool openai_parse_tools(void *doc_, serve_request *r, char *err, size_t cap)
{
    const cJSON *doc = doc_;
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(doc, "tools");
    if (cJSON_IsNull(tools) || (cJSON_IsArray(tools) && !cJSON_GetArraySize(tools)))
        tools = NULL;
    if (tools && !check_tools(tools, err, cap))
        return false;
    if (!parse_choice(doc, tools, r, err, cap) || !parse_reasoning(doc, r, err, cap))
        return false;
    if (tools && r->tool_choice != TOOLS_NONE && !(r->tools = cJSON_PrintUnformatted(tools)))
        return fail(err, cap, "out of memory", NULL);
    return true;
}

size_t openai_count_tool_calls(void *messages)
{
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, (cJSON *)messages) {
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        n += cJSON_IsArray(tc) ? (size_t)cJSON_GetArraySize(tc) : 0;
    }
    return n;
}

static const char *opt_string(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One call of an assistant message; arguments given as an object are printed to text,
 * owned by the document. */
static bool one_call(cJSON *c, gemma_tool_call *out, char *err, size_t cap)
{
    cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
    cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    out->id = opt_string(c, "id");
    out->name = opt_string(fn, "name");
    if (!out->name)
        return fail(err, cap, "each call needs \"function\": {\"name\", \"arguments\"}", "messages[].tool_calls");
    if (cJSON_IsObject(args)) {
        char *text = cJSON_PrintUnformatted(args);
        cJSON *s = text ? cJSON_CreateString(text) : NULL;
        free(text);
        if (!s || !cJSON_ReplaceItemInObjectCaseSensitive(fn, "arguments", s)) {
            cJSON_Delete(s);
            return fail(err, cap, "out of memory", NULL);
        }
        args = s;
    }
    if (args && !cJSON_IsString(args))
        return fail(err, cap, "arguments must be a JSON string (or object)", "messages[].tool_calls");
    out->arguments = args ? args->valuestring : "{}";
    return true;
}

bool openai_message_tools(void *msg, size_t i, gemma_chat_message *m, serve_request *r, size_t *used, char *err,
                          size_t cap)
{
    cJSON *j = msg;
    cJSON *tc = cJSON_GetObjectItemCaseSensitive(j, "tool_calls");
    m->tool_call_id = opt_string(j, "tool_call_id");
    m->name = opt_string(j, "name");
    m->reasoning = opt_string(j, "reasoning_content");
    if (!tc || cJSON_IsNull(tc) || !cJSON_GetArraySize(tc))
        return true;
    if (!cJSON_IsArray(tc) || strcmp(m->role, "assistant")) {
        snprintf(err, cap, "messages[%zu].tool_calls: only an assistant message has an array of tool calls", i);
        return false;
    }
    m->tool_calls = r->calls + *used;
    cJSON *c;
    cJSON_ArrayForEach(c, tc) {
        if (!one_call(c, &r->calls[*used], err, cap))
            return false;
        (*used)++;
        m->n_tool_calls++;
    }
    return true;
}
