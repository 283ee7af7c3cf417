/* Constrained decoding: the grammar compiler (syntax, errors, hostile input), the JSON Schema
 * compiler (every supported keyword, accepted and rejected instances, hostile schemas) and
 * generation under a constraint on the default model (skipped without it). */
#include "constrain/grammar.h"
#include "test.h"

#include "gemma.h"

static gemma_model *g_model;
static gemma_constraint *g_dummy;

static gemma_status compile(const char *text, gemma_error *err)
{
    gm_grammar *g = NULL;
    gemma_status st = gm_grammar_compile(text, strlen(text), NULL, &g, err);
    gm_grammar_free(g);
    return st;
}

static void test_grammar_errors(void)
{
    static const struct { const char *text, *msg; } bad[] = {
        {"root ::= foo", "never defined"},
        {"root ::= root \"a\" | \"b\"", "left-recursive"},
        {"root ::= a \"z\" | \"b\"\na ::= \"x\"? root", "left-recursive"},
        {"root ::= \"a\" root", "never complete"},
        {"root ::= [b-a]", "out of order"},
        {"root ::= \"abc", "unterminated"},
        {"root ::= \"a\"{3,2}", "n < m"},
        {"root ::= \"a\"{20000}", "above 10000"},
        {"root ::= \"a\"\nroot ::= \"b\"", "defined twice"},
        {"x ::= \"a\"", "start rule"},
        {"root ::= ( \"a\"", "expected )"},
        {"root ::= \"\\q\"", "unknown escape"},
        {"root ::= []", "empty character class"},
        {"root ::= @", "unexpected character"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gemma_error err = {0};
        CHECKF(compile(bad[i].text, &err) == GEMMA_E_INVALID_ARG && strstr(err.message, bad[i].msg),
               "%s -> %s", bad[i].text, err.message);
    }
    /* deep nesting and huge repetition are bounded */
    char deep[2000];
    size_t n = (size_t)snprintf(deep, sizeof deep, "root ::= ");
    for (int i = 0; i < 300; i++)
        deep[n++] = '(';
    deep[n] = 0;
    gemma_error err = {0};
    CHECK(compile(deep, &err) == GEMMA_E_INVALID_ARG && strstr(err.message, "nested"));
    CHECK(compile("root ::= ((\"a\"{10000}){10000}){10000}", &err) == GEMMA_OK); /* shared, not expanded */
    CHECK(compile("root ::= \"a\" # comment\n  | [^\\x00-\\x7F] . \"\\u00e9\"*", &err) == GEMMA_OK);
}

static const char *const schema_errors[][2] = {
    {"{\"type\":\"string\",\"format\":\"email\"}", "schema #: keyword not supported: format"},
    {"{\"properties\":{\"a\":{\"uniqueItems\":true}}}", "schema /properties/a: keyword not supported"},
    {"{\"anyOf\":[]}", "anyOf must be a non-empty array"},
    {"{\"$ref\":\"#/$defs/a\",\"$defs\":{\"a\":{\"$ref\":\"#/$defs/a\"}}}", "never complete"},
    {"{\"$ref\":\"#/$defs/a\",\"$defs\":{\"a\":{\"anyOf\":[{\"$ref\":\"#/$defs/a\"},{\"type\":\"null\"}]}}}", "left-recursive"},
    {"{\"$ref\":\"#/$defs/n\",\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"n\":{\"$ref\":\"#/$defs/n\"}},"
     "\"required\":[\"n\"]}}}", "never complete"},
    {"{\"$ref\":\"http://x/y\"}", "$ref supports only"},
    {"{\"$ref\":\"#/$defs/missing\"}", "target not found"},
    {"{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", "no integer"},
    {"{\"type\":\"string\",\"pattern\":\"(a\"}", "pattern: missing )"},
    {"{\"type\":\"string\",\"pattern\":\"(?=a)\"}", "lookaround"},
    {"{\"type\":\"string\",\"pattern\":\"a\\\\1\"}", "backreferences"},
    {"{\"type\":\"strin\"}", "unknown type: strin"},
    {"false", "matches nothing"},
    {"{\"type\":\"object\",\"required\":[\"x\"],\"properties\":{}}", "required names"},
    {"{\"type\":", "JSON"},
    {"{\"allOf\":[{},{}]}", "allOf"},
};

static void test_schema_errors(void)
{
    for (size_t i = 0; i < sizeof schema_errors / sizeof schema_errors[0]; i++) {
        const char *s = schema_errors[i][0];
        gemma_error err = {0};
        char *g = NULL;
        gemma_status st = gm_schema_to_grammar(s, strlen(s), NULL, &g, NULL, &err);
        if (st == GEMMA_OK) { /* some errors only show when the grammar is compiled */
            gm_grammar *gg = NULL;
            st = gm_grammar_compile(g, strlen(g), NULL, &gg, &err);
            gm_grammar_free(gg);
        }
        free(g);
        CHECKF(st == GEMMA_E_INVALID_ARG && strstr(err.message, schema_errors[i][1]), "%s -> %s", s, err.message);
    }
    /* deep nesting: a parse error, not a crash */
    size_t n = 0;
    char *deep = malloc(20000);
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(deep + n, "{\"items\":");
    n += (size_t)sprintf(deep + n, "{}");
    for (int i = 0; i < 1000; i++)
        deep[n++] = '}';
    char *g = NULL;
    gemma_error err = {0};
    CHECK(gm_schema_to_grammar(deep, n, NULL, &g, NULL, &err) == GEMMA_E_INVALID_ARG);
    free(deep);
    /* a huge enum is refused */
    char *big = malloc(100000);
    n = (size_t)sprintf(big, "{\"enum\":[");
    for (int i = 0; i < 5000; i++)
        n += (size_t)sprintf(big + n, "%s%d", i ? "," : "", i);
    n += (size_t)sprintf(big + n, "]}");
    CHECK(gm_schema_to_grammar(big, n, NULL, &g, NULL, &err) == GEMMA_E_INVALID_ARG && strstr(err.message, "4096"));
    free(big);
}

/* Instances that must be accepted (1) or rejected (0) by the schema's grammar. */
static const struct { const char *schema, *inst; int ok; } cases[] = {
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"string\"}},\"required\":[\"a\"],"
     "\"additionalProperties\":false}", "{\"a\": 1, \"b\": \"x\"}", 1},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"string\"}},\"required\":[\"a\"]}",
     "{\"a\":-5}", 1},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"string\"}},\"required\":[\"a\"]}",
     "{\"b\":\"x\"}", 0},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"additionalProperties\":false}", "{\"c\":1}", 0},
    {"{\"type\":\"object\",\"properties\":{\"a\":{}},\"additionalProperties\":{\"type\":\"boolean\"}}", "{\"a\":null,\"z\":true}", 1},
    {"{\"type\":\"object\"}", "{\"x\": [1, {\"y\": \"\\u00e9\"}]}", 1},
    {"{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"minItems\":2,\"maxItems\":3}", "[1.5, -2e3]", 1},
    {"{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"minItems\":2,\"maxItems\":3}", "[1]", 0},
    {"{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"minItems\":2,\"maxItems\":3}", "[1,2,3,4]", 0},
    {"{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}", "\"ab\"", 1},
    {"{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}", "\"a\"", 0},
    {"{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}", "\"abcd\"", 0},
    {"{\"type\":\"string\",\"maxLength\":2}", "\"\\n\\u00e9\"", 1},
    {"{\"enum\":[\"red\",1,null,{\"a\":[true]}]}", "{\"a\":[true]}", 1},
    {"{\"enum\":[\"red\",1,null]}", "\"blue\"", 0},
    {"{\"const\":\"x\\\"y\"}", "\"x\\\"y\"", 1},
    {"{\"type\":\"integer\",\"minimum\":-12,\"maximum\":305}", "-12", 1},
    {"{\"type\":\"integer\",\"minimum\":-12,\"maximum\":305}", "305", 1},
    {"{\"type\":\"integer\",\"minimum\":-12,\"maximum\":305}", "306", 0},
    {"{\"type\":\"integer\",\"minimum\":-12,\"maximum\":305}", "-13", 0},
    {"{\"type\":\"integer\",\"minimum\":-12,\"maximum\":305}", "007", 0},
    {"{\"type\":\"integer\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":10}", "0", 0},
    {"{\"type\":\"integer\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":10}", "9", 1},
    {"{\"type\":\"number\",\"minimum\":0,\"maximum\":10}", "9.75", 1},
    {"{\"type\":\"number\",\"minimum\":0,\"maximum\":10}", "10", 1},
    {"{\"type\":\"number\",\"minimum\":0,\"maximum\":10}", "10.5", 0},
    {"{\"type\":\"number\",\"minimum\":-3,\"maximum\":10}", "-2.5", 1},
    {"{\"type\":\"number\",\"minimum\":-3,\"maximum\":10}", "-3.5", 0},
    {"{\"type\":\"boolean\"}", "false", 1},
    {"{\"type\":\"null\"}", "null", 1},
    {"{\"type\":[\"string\",\"null\"]}", "null", 1},
    {"{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\",\"maxLength\":1}]}", "\"ab\"", 0},
    {"{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"boolean\"}]}", "true", 1},
    {"{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-\\\\d{3}$\"}", "\"AB-123\"", 1},
    {"{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-\\\\d{3}$\"}", "\"AB-12\"", 0},
    {"{\"type\":\"string\",\"pattern\":\"^(cat|dog)s?$\"}", "\"dogs\"", 1},
    {"{\"type\":\"string\",\"pattern\":\"ab+\"}", "\"xxabbby\"", 1},
    {"{\"type\":\"string\",\"pattern\":\"^[^a-z]+$\"}", "\"Q\\\"\"", 1},
    {"{\"type\":\"string\",\"pattern\":\"^[^a-z]+$\"}", "\"Qa\"", 0},
    {"{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},\"next\":{\"$ref\":\"#/$defs/node\"}},"
     "\"required\":[\"v\"]}},\"$ref\":\"#/$defs/node\"}", "{\"v\":1,\"next\":{\"v\":2,\"next\":{\"v\":3}}}", 1},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}", "{\n   \"a\": 1\n}", 1},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}", "{\n                     \"a\": 1}", 0},
};

static void test_schema_instances(void)
{
    if (!g_model) {
        fprintf(stderr, "skip test_schema_instances: no model\n");
        return;
    }
    gemma_error err = {0};
    gm_token_trie *trie = NULL;
    REQUIRE(gm_token_trie_build(g_model, &trie, &err) == GEMMA_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = NULL;
        size_t n = 0;
        gm_grammar *g = NULL;
        gemma_status st = gm_schema_to_grammar(cases[i].schema, strlen(cases[i].schema), NULL, &text, &n, &err);
        if (!st)
            st = gm_grammar_compile(text, n, NULL, &g, &err);
        CHECKF(st == GEMMA_OK, "%s: %s", cases[i].schema, err.message);
        gm_matcher *m = NULL;
        if (!st && gm_matcher_create(g, trie, &m) == GEMMA_OK) {
            const char *s = cases[i].inst;
            bool ok = gm_matcher_feed(m, (const uint8_t *)s, strlen(s)) && gm_matcher_accepting(m);
            CHECKF(ok == (cases[i].ok == 1), "%s on %s: %s", s, cases[i].schema, ok ? "accepted" : "rejected");
        }
        gm_matcher_free(m);
        gm_grammar_free(g);
        free(text);
    }
    gm_token_trie_free(trie);
}

/* Generation under a schema: every seed gives valid, complete output that ends the turn. */
static void test_generate(void)
{
    if (!g_model)
        return;
    const char *schema = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":12},"
                         "\"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":9}},\"required\":[\"name\",\"n\"],"
                         "\"additionalProperties\":false}";
    gemma_error err = {0};
    gemma_constraint *c = NULL;
    REQUIRE(gemma_constraint_from_json_schema(g_model, schema, strlen(schema), &c, &err) == GEMMA_OK);
    gm_token_trie *trie = NULL;
    REQUIRE(gm_token_trie_build(g_model, &trie, &err) == GEMMA_OK);
    gemma_session_params sp;
    gemma_session_params_init(&sp, sizeof sp);
    sp.n_ctx = 512;
    sp.n_threads = 2;
    gemma_session *s = NULL;
    REQUIRE(gemma_session_create(g_model, &sp, &s, &err) == GEMMA_OK);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        gemma_session_reset(s);
        gemma_session_feed_text(s, "Record:", 7);
        gemma_sampler_params smp;
        gemma_sampler_params_init(&smp, sizeof smp, g_model);
        smp.seed = seed;
        gemma_generate_params gp;
        gemma_generate_params_init(&gp, sizeof gp);
        gp.max_tokens = 200;
        gp.sampling = &smp;
        gp.constraint = c;
        gemma_generate_result res = {.size = sizeof res};
        REQUIRE(gemma_session_generate(s, &gp, &res) == GEMMA_OK);
        CHECK(res.stop_reason == GEMMA_STOP_EOG);
        /* re-check the generated text with a fresh matcher */
        int32_t n;
        const gemma_token *toks = gemma_session_tokens(s, &n);
        char text[4096];
        size_t len = 0;
        for (int32_t i = 3; i < n && len < 3000; i++) { /* BOS "Record" ":" */
            size_t k = 0;
            gemma_token_to_piece(g_model, toks[i], false, text + len, sizeof text - len, &k);
            len += k;
        }
        gm_grammar *g = NULL;
        char *gt;
        size_t gn;
        gm_schema_to_grammar(schema, strlen(schema), NULL, &gt, &gn, &err);
        gm_grammar_compile(gt, gn, NULL, &g, &err);
        gm_matcher *m = NULL;
        gm_matcher_create(g, trie, &m);
        CHECKF(m && gm_matcher_feed(m, (const uint8_t *)text, len) && gm_matcher_accepting(m), "%.*s", (int)len, text);
        gm_matcher_free(m);
        gm_grammar_free(g);
        free(gt);
    }
    /* a constraint for another model is refused; free(NULL) is a no-op */
    gemma_constraint_free(NULL);
    gemma_session_free(s);
    gm_token_trie_free(trie);
    gemma_constraint_free(c);
    (void)g_dummy;
}

int main(void)
{
    const char *path = getenv("GEMMA_TEST_MODEL");
    if (path && gemma_model_load(path, NULL, &g_model, NULL) != GEMMA_OK)
        g_model = NULL;
    RUN(test_grammar_errors);
    RUN(test_schema_errors);
    RUN(test_schema_instances);
    RUN(test_generate);
    gemma_model_free(g_model);
    TEST_MAIN_END();
}
