// cmd_info.c — `mav info FILE | --config NAME [--json]`: what a checkpoint or named config
// holds: kind, config, parameter counts (total and per module), tensor dtypes.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/params.h"
#include "io/safetensors.h"
#include "nets/unet.h"

static const char *g_config = NULL;
static int g_json = 0;

const cli_opt info_opts[] = {
    {"config", OPT_STRING, &g_config, "NAME", "describe a named config (tiny, bench-decoder, bench-sr, bench-image)", 0, 0},
    {"json", OPT_FLAG, &g_json, NULL, "print one JSON object (total parameter count under \"params\")", 0, 0},
    CLI_OPT_END};

// Module of a tensor name: "down.1" / "up.0" for level blocks, else the first component.
static void module_of(const char *name, char *out, size_t cap) {
    const char *dot = strchr(name, '.');
    size_t n = dot ? (size_t)(dot - name) : strlen(name);
    if (dot && (strncmp(name, "down.", 5) == 0 || strncmp(name, "up.", 3) == 0)) {
        const char *dot2 = strchr(dot + 1, '.');
        n = dot2 ? (size_t)(dot2 - name) : strlen(name);
    }
    if (n >= cap) n = cap - 1;
    memcpy(out, name, n);
    out[n] = 0;
}

typedef struct { char name[64]; size_t count; } module_count;

static void count_module(module_count *mods, int *nmods, int cap, const char *tensor, size_t numel) {
    char m[64];
    module_of(tensor, m, sizeof m);
    for (int i = 0; i < *nmods; i++)
        if (strcmp(mods[i].name, m) == 0) { mods[i].count += numel; return; }
    if (*nmods < cap) { snprintf(mods[*nmods].name, sizeof mods[0].name, "%s", m); mods[(*nmods)++].count = numel; }
}

int cmd_info(int argc, char **argv) {
    const cli_command *cmd = cli_find("info");
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(cmd, info_opts, argc, argv, 1, pos, 1, &npos);
    if (rc) return rc;
    if ((npos == 1) == (g_config != NULL)) return cli_usage_error(cmd, "give either a FILE or --config NAME");

    enum { MAXMOD = 256 };
    module_count mods[MAXMOD];
    int nmods = 0;
    size_t total = 0, temporal = 0;
    size_t dtype_count[MAV_DTYPE_COUNT] = {0};
    const char *kind = "unet";
    json_t *config_json = NULL;
    mav_st_file f = {0};
    int have_file = 0;

    if (g_config) {
        mav_unet_config c;
        if (mav_unet_config_named(&c, g_config) != MAV_OK) return cli_usage_error(cmd, "%s", mav_last_error());
        mav_params p;
        mav_params_init(&p);
        if (mav_unet_register_params(&c, &p) != MAV_OK) return cli_fail(g_config);
        for (int i = 0; i < p.count; i++) {
            count_module(mods, &nmods, MAXMOD, p.items[i].name, p.items[i].numel);
            total += p.items[i].numel;
            if (mav_unet_is_temporal_param(p.items[i].name)) temporal += p.items[i].numel;
            dtype_count[MAV_F32]++;
        }
        mav_params_free(&p);
        char *js = mav_unet_config_to_json(&c);
        config_json = json_loads(js, 0, NULL);
        free(js);
    } else {
        if (mav_st_open(&f, pos[0]) != MAV_OK) return cli_fail("info");
        have_file = 1;
        const char *k = mav_st_meta(&f, "mav.kind");
        kind = k ? k : "(none: not a mav checkpoint)";
        const char *cj = mav_st_meta(&f, "mav.config");
        if (cj) {
            config_json = json_loads(cj, 0, NULL);
            if (!config_json) { mav_st_close(&f); fprintf(stderr, "mav info: %s: mav.config is not valid JSON\n", pos[0]); return 1; }
        }
        for (int i = 0; i < f.ntensors; i++) {
            count_module(mods, &nmods, MAXMOD, f.tensors[i].name, f.tensors[i].numel);
            total += f.tensors[i].numel;
            if (mav_unet_is_temporal_param(f.tensors[i].name)) temporal += f.tensors[i].numel;
            dtype_count[f.tensors[i].dtype]++;
        }
    }

    if (g_json) {
        json_t *o = json_object(), *m = json_object(), *d = json_object();
        json_object_set_new(o, "kind", json_string(kind));
        if (g_config) json_object_set_new(o, "name", json_string(g_config));
        if (have_file) json_object_set_new(o, "file", json_string(pos[0]));
        if (config_json) json_object_set(o, "config", config_json);
        json_object_set_new(o, "params", json_integer((json_int_t)total));
        json_object_set_new(o, "temporal_params", json_integer((json_int_t)temporal));
        for (int i = 0; i < nmods; i++) json_object_set_new(m, mods[i].name, json_integer((json_int_t)mods[i].count));
        json_object_set_new(o, "modules", m);
        for (int t = 0; t < MAV_DTYPE_COUNT; t++)
            if (dtype_count[t]) json_object_set_new(d, mav_dtype_name((mav_dtype)t), json_integer((json_int_t)dtype_count[t]));
        json_object_set_new(o, "dtypes", d);
        char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        printf("%s: %s\n", g_config ? g_config : pos[0], kind);
        if (config_json) {
            char *s = json_dumps(config_json, JSON_PRESERVE_ORDER | JSON_COMPACT);
            printf("config: %s\n", s);
            free(s);
        }
        printf("parameters: %zu (%.2f M), of which temporal: %zu\n", total, total / 1e6, temporal);
        for (int i = 0; i < nmods; i++) printf("  %-16s %12zu\n", mods[i].name, mods[i].count);
        printf("dtypes:");
        for (int t = 0; t < MAV_DTYPE_COUNT; t++)
            if (dtype_count[t]) printf(" %s (%zu tensors)", mav_dtype_name((mav_dtype)t), dtype_count[t]);
        printf("\n");
    }
    json_decref(config_json);
    if (have_file) mav_st_close(&f);
    return 0;
}
