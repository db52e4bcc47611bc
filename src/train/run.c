// run.c — the training-run framework (run.h): options, step loop, EMA, progress, loss.csv,
// SVG plot, validation schedule, atomic checkpoints and bit-identical resume.
#include "train/run.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "media/media.h"
#include "optim/ema.h"
#include "optim/lr_schedule.h"

// ---- options ----------------------------------------------------------------------------------

void mav_run_opts_default(mav_run_opts *o) {
    *o = (mav_run_opts){.steps = 1000, .warmup = 100, .until = 0, .batch = 32, .lr = 3e-4, .min_lr = 3e-5,
                        .weight_decay = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .grad_clip = 1.0,
                        .ema_decay = 0.999, .save_every = 500, .val_every = 250, .log_every = 10, .val_items = 0,
                        .seed = 0};
}

typedef enum { F_LONG, F_INT, F_DOUBLE, F_U64 } field_type;
typedef struct {
    const char *name;
    field_type type;
    size_t off;
} field;
#define FLD(n, t) {#n, t, offsetof(mav_run_opts, n)}
static const field k_fields[] = {
    FLD(steps, F_LONG),        FLD(warmup, F_LONG),     FLD(until, F_LONG),        FLD(batch, F_INT),
    FLD(lr, F_DOUBLE),         FLD(min_lr, F_DOUBLE),   FLD(weight_decay, F_DOUBLE), FLD(beta1, F_DOUBLE),
    FLD(beta2, F_DOUBLE),      FLD(eps, F_DOUBLE),      FLD(grad_clip, F_DOUBLE),  FLD(ema_decay, F_DOUBLE),
    FLD(save_every, F_LONG),   FLD(val_every, F_LONG),  FLD(log_every, F_LONG),    FLD(val_items, F_INT),
    FLD(seed, F_U64)};
#define N_FIELDS ((int)(sizeof k_fields / sizeof k_fields[0]))

mav_status mav_run_opts_set(mav_run_opts *o, const char *key, const char *value) {
    for (int i = 0; i < N_FIELDS; i++) {
        const field *f = &k_fields[i];
        if (strcmp(f->name, key) != 0) continue;
        char *end = NULL;
        char *p = (char *)o + f->off;
        errno = 0;
        if (f->type == F_DOUBLE) {
            double v = strtod(value, &end);
            if (!*value || *end || errno || !isfinite(v))
                return mav_fail(MAV_ERR_ARG, "run option %s: \"%s\" is not a number", key, value);
            *(double *)p = v;
        } else if (f->type == F_U64) {
            if (value[0] == '-') return mav_fail(MAV_ERR_ARG, "run option %s: \"%s\" is negative", key, value);
            unsigned long long v = strtoull(value, &end, 10);
            if (!*value || *end || errno) return mav_fail(MAV_ERR_ARG, "run option %s: \"%s\" is not an integer", key, value);
            *(uint64_t *)p = (uint64_t)v;
        } else {
            long v = strtol(value, &end, 10);
            if (!*value || *end || errno || (f->type == F_INT && (v < -2147483647L || v > 2147483647L)))
                return mav_fail(MAV_ERR_ARG, "run option %s: \"%s\" is not an integer", key, value);
            if (f->type == F_INT) *(int *)p = (int)v;
            else *(long *)p = v;
        }
        return MAV_OK;
    }
    return mav_fail(MAV_ERR_ARG, "unknown run option \"%s\"", key);
}

mav_status mav_run_opts_from_json(mav_run_opts *o, const char *json) {
    json_error_t err;
    json_t *root = json_loads(json, 0, &err);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return mav_fail(MAV_ERR_ARG, "run options: not a JSON object (%s, line %d)", err.text, err.line);
    }
    const char *key;
    json_t *v;
    mav_status st = MAV_OK;
    json_object_foreach(root, key, v) {
        char buf[64];
        if (json_is_integer(v)) snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_real(v)) snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
        else if (json_is_string(v)) snprintf(buf, sizeof buf, "%s", json_string_value(v));
        else { st = mav_fail(MAV_ERR_ARG, "run option %s: expects a number", key); break; }
        if ((st = mav_run_opts_set(o, key, buf)) != MAV_OK) break;
    }
    json_decref(root);
    return st;
}

mav_status mav_run_opts_load_file(mav_run_opts *o, const char *path) {
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) return mav_fail(MAV_ERR_IO, "%s: %s (line %d)", path, err.text, err.line);
    char *s = json_dumps(root, 0);
    json_decref(root);
    if (!s) return mav_fail(MAV_ERR_NOMEM, "out of memory");
    mav_status st = mav_run_opts_from_json(o, s);
    free(s);
    if (st != MAV_OK) return mav_fail(st, "%s: %s", path, mav_last_error());
    return MAV_OK;
}

char *mav_run_opts_to_json(const mav_run_opts *o) {
    // Written by hand with %.17g so that every double round-trips exactly (resume exactness).
    size_t cap = 2048, n = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    n += (size_t)snprintf(s + n, cap - n, "{");
    for (int i = 0; i < N_FIELDS; i++) {
        const field *f = &k_fields[i];
        const char *p = (const char *)o + f->off;
        const char *sep = i ? ", " : "";
        if (f->type == F_DOUBLE) n += (size_t)snprintf(s + n, cap - n, "%s\"%s\": %.17g", sep, f->name, *(const double *)p);
        else if (f->type == F_U64)
            n += (size_t)snprintf(s + n, cap - n, "%s\"%s\": \"%" PRIu64 "\"", sep, f->name, *(const uint64_t *)p);
        else if (f->type == F_INT) n += (size_t)snprintf(s + n, cap - n, "%s\"%s\": %d", sep, f->name, *(const int *)p);
        else n += (size_t)snprintf(s + n, cap - n, "%s\"%s\": %ld", sep, f->name, *(const long *)p);
    }
    snprintf(s + n, cap - n, "}");
    return s;
}

mav_status mav_run_opts_check(const mav_run_opts *o) {
    if (o->steps < 1) return mav_fail(MAV_ERR_ARG, "steps must be >= 1, got %ld", o->steps);
    if (o->warmup < 0) return mav_fail(MAV_ERR_ARG, "warmup must be >= 0, got %ld", o->warmup);
    if (o->until < 0 || o->until > o->steps)
        return mav_fail(MAV_ERR_ARG, "until must be in 0..steps (%ld), got %ld", o->steps, o->until);
    if (o->batch < 1 || o->batch > 65536) return mav_fail(MAV_ERR_ARG, "batch must be in 1..65536, got %d", o->batch);
    if (!(o->lr > 0) || !(o->min_lr >= 0) || o->min_lr > o->lr)
        return mav_fail(MAV_ERR_ARG, "need lr > 0 and 0 <= min_lr <= lr (lr %g, min_lr %g)", o->lr, o->min_lr);
    if (!(o->grad_clip >= 0)) return mav_fail(MAV_ERR_ARG, "grad_clip must be >= 0, got %g", o->grad_clip);
    if (!(o->ema_decay >= 0 && o->ema_decay <= 1))
        return mav_fail(MAV_ERR_ARG, "ema_decay must be in [0, 1], got %g", o->ema_decay);
    if (o->save_every < 0 || o->val_every < 0 || o->log_every < 1 || o->val_items < 0)
        return mav_fail(MAV_ERR_ARG, "need save_every >= 0, val_every >= 0, log_every >= 1, val_items >= 0");
    if (!(o->weight_decay >= 0) || !(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1) || !(o->eps > 0))
        return mav_fail(MAV_ERR_ARG, "AdamW: need weight_decay >= 0, beta1/beta2 in [0, 1), eps > 0");
    return MAV_OK;
}

// ---- helpers ----------------------------------------------------------------------------------

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    MAV_ASSERT(p != NULL);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void rng_str(char *buf, size_t cap, mav_rng r) {
    snprintf(buf, cap, "%" PRIu64 " %" PRIu64, r.seed, r.offset);
}

static mav_status rng_parse(const mav_st_file *f, const char *key, mav_rng *r) {
    const char *v = mav_st_meta(f, key);
    unsigned long long a, b;
    if (!v || sscanf(v, "%llu %llu", &a, &b) != 2) return mav_fail(MAV_ERR_FORMAT, "%s: bad or missing %s", f->path, key);
    r->seed = a;
    r->offset = b;
    return MAV_OK;
}

// Remove temp files a killed checkpoint write left behind ("checkpoint.safetensors.tmp.PID"):
// they are never read (the last good checkpoint is the renamed file), only cleaned.
static void clean_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    const char *pre = MAV_RUN_CHECKPOINT ".tmp.";
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, pre, strlen(pre)) != 0) continue;
        char *p = path_join(dir, e->d_name);
        if (unlink(p) == 0) fprintf(stderr, "train: removed %s (left by an interrupted checkpoint write)\n", p);
        free(p);
    }
    closedir(d);
}

mav_status mav_run_read_image(mav_dataset *ds, int i, int res, float *x) {
    mav_frames f, r;
    mav_status st = mav_dataset_read(ds, i, 1, &f);
    if (st != MAV_OK) return st;
    st = mav_frames_resize_crop(&r, &f, res, res);
    mav_frames_free(&f);
    if (st != MAV_OK) return st;
    mav_frames_to_f32(x, &r);
    mav_frames_free(&r);
    return MAV_OK;
}

// ---- checkpoint ---------------------------------------------------------------------------------

static mav_status save_state(const mav_stage *s, const mav_run_opts *o, const char *path, long step,
                             const float *ema, mav_rng data, mav_rng noise) {
    mav_st_writer w;
    mav_st_writer_init(&w);
    mav_params view = *s->params;  // same layout, other region as "value"
    mav_checkpoint_add(&w, &view, "", MAV_F32);
    view.value = (float *)ema;
    mav_checkpoint_add(&w, &view, "ema.", MAV_F32);
    view.value = s->params->m;
    mav_checkpoint_add(&w, &view, "adam_m.", MAV_F32);
    view.value = s->params->v;
    mav_checkpoint_add(&w, &view, "adam_v.", MAV_F32);
    char buf[64];
    mav_st_writer_meta(&w, "mav.kind", "train_state");
    mav_st_writer_meta(&w, "mav.stage", s->name);
    snprintf(buf, sizeof buf, "%ld", step);
    mav_st_writer_meta(&w, "mav.step", buf);
    rng_str(buf, sizeof buf, data);
    mav_st_writer_meta(&w, "mav.rng.data", buf);
    rng_str(buf, sizeof buf, noise);
    mav_st_writer_meta(&w, "mav.rng.noise", buf);
    char *run = mav_run_opts_to_json(o);
    mav_st_writer_meta(&w, "mav.run", run ? run : "{}");
    free(run);
    for (int i = 0; i < s->nmeta; i++) mav_st_writer_meta(&w, s->meta_keys[i], s->meta_vals[i]);
    mav_status st = mav_st_writer_save(&w, path);
    mav_st_writer_free(&w);
    return st;
}

// Read one region of every parameter from tensors prefix + name.
static mav_status load_region(const mav_st_file *f, const mav_params *p, const char *prefix, float *region) {
    char full[MAV_NAME_MAX + 16];
    for (int i = 0; i < p->count; i++) {
        const mav_param *t = &p->items[i];
        snprintf(full, sizeof full, "%s%s", prefix, t->name);
        mav_status st = mav_st_read_f32(f, full, t->ndim, t->shape, region + t->offset);
        if (st != MAV_OK) return st;
    }
    return MAV_OK;
}

static mav_status load_state(const mav_stage *s, const char *path, long *step, float *ema, mav_rng *data,
                             mav_rng *noise) {
    mav_st_file f;
    mav_status st = mav_st_open(&f, path);
    if (st != MAV_OK) return st;
    const char *kind = mav_st_meta(&f, "mav.kind"), *stage = mav_st_meta(&f, "mav.stage"),
               *sv = mav_st_meta(&f, "mav.step");
    if (!kind || strcmp(kind, "train_state") != 0 || !stage || !sv) {
        st = mav_fail(MAV_ERR_FORMAT, "%s: not a training checkpoint (mav.kind = train_state)", path);
    } else if (strcmp(stage, s->name) != 0) {
        st = mav_fail(MAV_ERR_FORMAT, "%s: a checkpoint of stage \"%s\", not \"%s\"", path, stage, s->name);
    } else {
        *step = strtol(sv, NULL, 10);
        st = rng_parse(&f, "mav.rng.data", data);
        if (st == MAV_OK) st = rng_parse(&f, "mav.rng.noise", noise);
        if (st == MAV_OK) st = load_region(&f, s->params, "", s->params->value);
        if (st == MAV_OK) st = load_region(&f, s->params, "ema.", ema);
        if (st == MAV_OK) st = load_region(&f, s->params, "adam_m.", s->params->m);
        if (st == MAV_OK) st = load_region(&f, s->params, "adam_v.", s->params->v);
    }
    mav_st_close(&f);
    return st;
}

mav_status mav_run_peek(const char *out_dir, mav_run_opts *o, const char *key, char **value) {
    char *path = path_join(out_dir, MAV_RUN_CHECKPOINT);
    mav_st_file f;
    mav_status st = mav_st_open(&f, path);
    if (st != MAV_OK) {
        free(path);
        return st;
    }
    const char *kind = mav_st_meta(&f, "mav.kind");
    if (!kind || strcmp(kind, "train_state") != 0) st = mav_fail(MAV_ERR_FORMAT, "%s: not a training checkpoint", path);
    if (st == MAV_OK && o) {
        const char *run = mav_st_meta(&f, "mav.run");
        if (!run) st = mav_fail(MAV_ERR_FORMAT, "%s: no mav.run metadata", path);
        else {
            mav_run_opts_default(o);
            st = mav_run_opts_from_json(o, run);
        }
    }
    if (st == MAV_OK && value) {
        const char *v = mav_st_meta(&f, key);
        *value = v ? strdup(v) : NULL;
    }
    mav_st_close(&f);
    free(path);
    return st;
}

// ---- loss.csv and the plot ------------------------------------------------------------------------

// Keep the header and the rows of steps <= step (a resumed run rewrites what follows).
static mav_status csv_truncate(const char *path, long step) {
    FILE *f = fopen(path, "rb");
    if (!f) return MAV_OK;  // none yet: the caller writes a header
    mav_atomic_file a;
    mav_status st = mav_atomic_open(&a, path);
    char line[4096];
    int first = 1;
    while (st == MAV_OK && fgets(line, sizeof line, f)) {
        if (!first && strtol(line, NULL, 10) > step) break;
        first = 0;
        st = mav_atomic_write(&a, line, strlen(line));
    }
    fclose(f);
    if (st == MAV_OK) return mav_atomic_commit(&a);
    mav_atomic_abort(&a);
    return st;
}

mav_status mav_run_plot(const char *csv_path, const char *svg_path) {
    FILE *f = fopen(csv_path, "rb");
    if (!f) return mav_fail(MAV_ERR_IO, "%s: %s", csv_path, strerror(errno));
    size_t cap = 1024, n = 0;
    double *xs = malloc(cap * sizeof *xs), *ys = malloc(cap * sizeof *ys), *vs = malloc(cap * sizeof *vs);
    char line[4096];
    if (!fgets(line, sizeof line, f)) line[0] = 0;  // header
    while (xs && ys && vs && fgets(line, sizeof line, f)) {
        if (n == cap) {
            cap *= 2;
            xs = realloc(xs, cap * sizeof *xs);
            ys = realloc(ys, cap * sizeof *ys);
            vs = realloc(vs, cap * sizeof *vs);
            if (!xs || !ys || !vs) break;
        }
        // step,loss,lr,grad_norm,val_loss,...
        char *p = line, *fld[5] = {0};
        for (int k = 0; k < 5 && p; k++) {
            fld[k] = p;
            p = strchr(p, ',');
            if (p) *p++ = 0;
        }
        if (!fld[1]) continue;
        xs[n] = strtod(fld[0], NULL);
        ys[n] = strtod(fld[1], NULL);
        vs[n] = fld[4] && fld[4][0] && fld[4][0] != '\n' ? strtod(fld[4], NULL) : NAN;
        n++;
    }
    fclose(f);
    if (!xs || !ys || !vs) {
        free(xs); free(ys); free(vs);
        return mav_fail(MAV_ERR_NOMEM, "out of memory");
    }
    double x0 = n ? xs[0] : 0, x1 = n ? xs[n - 1] : 1, y0 = INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(ys[i])) { y0 = fmin(y0, ys[i]); y1 = fmax(y1, ys[i]); }
        if (isfinite(vs[i])) { y0 = fmin(y0, vs[i]); y1 = fmax(y1, vs[i]); }
    }
    if (!(y1 > y0)) { y0 = isfinite(y0) ? y0 - 1 : 0; y1 = y0 + 2; }
    if (!(x1 > x0)) x1 = x0 + 1;
    const double W = 640, H = 400, L = 60, R = 20, T = 20, B = 40;
    mav_atomic_file a;
    mav_status st = mav_atomic_open(&a, svg_path);
    if (st != MAV_OK) { free(xs); free(ys); free(vs); return st; }
    size_t bcap = 256 + n * 64 * 2, bn = 0;
    char *buf = malloc(bcap);
    if (!buf) { mav_atomic_abort(&a); free(xs); free(ys); free(vs); return mav_fail(MAV_ERR_NOMEM, "out of memory"); }
#define PUT(...) bn += (size_t)snprintf(buf + bn, bcap - bn, __VA_ARGS__)
    PUT("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    PUT("<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#888\"/>\n", L, T, W - L - R, H - T - B);
    PUT("<text x=\"%g\" y=\"%g\">%.4g</text><text x=\"%g\" y=\"%g\">%.4g</text>\n", 2.0, T + 10, y1, 2.0, H - B, y0);
    PUT("<text x=\"%g\" y=\"%g\">step %.0f</text><text x=\"%g\" y=\"%g\" text-anchor=\"end\">%.0f</text>\n", L, H - 10, x0,
        W - R, H - 10, x1);
    PUT("<text x=\"%g\" y=\"%g\" fill=\"#1f77b4\">loss</text><text x=\"%g\" y=\"%g\" fill=\"#d62728\">val_loss</text>\n",
        W / 2 - 40, H - 10, W / 2 + 10, H - 10);
    for (int pass = 0; pass < 2; pass++) {
        const double *v = pass ? vs : ys;
        PUT("<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.2\" points=\"", pass ? "#d62728" : "#1f77b4");
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(v[i])) continue;
            if (bcap - bn < 64) {
                bcap *= 2;
                char *nb = realloc(buf, bcap);
                if (!nb) break;
                buf = nb;
            }
            double px = L + (xs[i] - x0) / (x1 - x0) * (W - L - R), py = T + (y1 - v[i]) / (y1 - y0) * (H - T - B);
            PUT("%.1f,%.1f ", px, py);
        }
        if (bcap - bn < 64) { bcap += 64; char *nb = realloc(buf, bcap); if (nb) buf = nb; }
        PUT("\"/>\n");
    }
    PUT("</svg>\n");
#undef PUT
    st = mav_atomic_write(&a, buf, bn);
    if (st == MAV_OK) st = mav_atomic_commit(&a);
    else mav_atomic_abort(&a);
    free(buf); free(xs); free(ys); free(vs);
    return st;
}

// ---- the loop ---------------------------------------------------------------------------------------

static void fmt_eta(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
}

static int count_names(const char *names) {
    if (!names || !*names) return 0;
    int n = 1;
    for (const char *p = names; *p; p++) n += *p == ',';
    return n < MAV_RUN_MAX_METRICS ? n : MAV_RUN_MAX_METRICS;
}

mav_status mav_run_train(mav_stage *s, const mav_run_opts *o, const mav_run_io *io) {
    mav_status st = mav_run_opts_check(o);
    if (st != MAV_OK) return st;
    mav_params *p = s->params;
    char *ckpt = path_join(io->out_dir, MAV_RUN_CHECKPOINT), *csv = path_join(io->out_dir, "loss.csv"),
         *svg = path_join(io->out_dir, "loss.svg"), *model = path_join(io->out_dir, "model.safetensors"),
         *model_ema = path_join(io->out_dir, "model-ema.safetensors");
    mav_dataset *ds = NULL, *val = NULL;
    mav_prefetch *pf = NULL;
    mav_batch batch = {0};
    FILE *csvf = NULL;
    float *ema = malloc(p->total * sizeof *ema);
    if (!ema) { st = mav_fail(MAV_ERR_NOMEM, "out of memory (EMA weights)"); goto done; }
    mav_ema_init(ema, p->value, p->total);

    mav_dataset_opts dopt = {.split = 0, .res = s->res, .max_items = 0};
    if ((st = mav_dataset_open(&ds, io->data, MAV_DS_IMAGES, &dopt)) != MAV_OK) goto done;
    int n_val = 0;
    if (io->val) {
        mav_dataset_opts vopt = {.split = 1, .res = s->res, .max_items = 0};
        if ((st = mav_dataset_open(&val, io->val, MAV_DS_IMAGES, &vopt)) != MAV_OK) goto done;
        n_val = mav_dataset_size(val);
        if (o->val_items > 0 && o->val_items < n_val) n_val = o->val_items;
        if (n_val < 1) { st = mav_fail(MAV_ERR_ARG, "%s: the held-out set is empty", io->val); goto done; }
    }

    // the output folder only once the data opened: a typo in --data leaves nothing behind
    if (mkdir(io->out_dir, 0777) != 0 && errno != EEXIST) {
        st = mav_fail(MAV_ERR_IO, "cannot create %s: %s", io->out_dir, strerror(errno));
        goto done;
    }
    clean_temps(io->out_dir);

    long step0 = 0;
    mav_rng data_rng = mav_rng_fork(o->seed, 1), noise = mav_rng_fork(o->seed, 2);
    if (io->resume) {
        if ((st = load_state(s, ckpt, &step0, ema, &data_rng, &noise)) != MAV_OK) goto done;
        if ((st = csv_truncate(csv, step0)) != MAV_OK) goto done;
        fprintf(stderr, "%s: resumed from %s at step %ld\n", s->name, ckpt, step0);
    }
    int nm = count_names(s->metric_names);
    if (!io->resume || access(csv, F_OK) != 0) {
        mav_atomic_file a;
        char head[512];
        snprintf(head, sizeof head, "step,loss,lr,grad_norm,val_loss%s%s\n", nm ? "," : "", nm ? s->metric_names : "");
        if ((st = mav_atomic_open(&a, csv)) != MAV_OK) goto done;
        if ((st = mav_atomic_write(&a, head, strlen(head))) != MAV_OK) { mav_atomic_abort(&a); goto done; }
        if ((st = mav_atomic_commit(&a)) != MAV_OK) goto done;
    }
    csvf = fopen(csv, "ab");
    if (!csvf) { st = mav_fail(MAV_ERR_IO, "%s: %s", csv, strerror(errno)); goto done; }

    long until = o->until ? o->until : o->steps;
    mav_lr_schedule ls = {.base_lr = o->lr, .min_lr = o->min_lr, .warmup = o->warmup < o->steps ? o->warmup : o->steps,
                          .total = o->steps};
    if ((st = mav_lr_schedule_check(&ls)) != MAV_OK) goto done;
    if ((st = mav_batch_alloc(&batch, o->batch, 1, s->res)) != MAV_OK) goto done;
    if ((st = mav_prefetch_start(&pf, ds, MAV_DS_IMAGES, o->batch, 1, s->res, data_rng)) != MAV_OK) goto done;

    double t_start = now_s();
    long saved_at = step0;
    for (long step = step0 + 1; step <= until; step++) {
        if ((st = mav_prefetch_next(pf, &batch)) != MAV_OK) goto done;
        float lr = (float)mav_lr_at(&ls, step);
        mav_run_step_out r = {0};
        if ((st = s->step(s->ctx, &batch, o, step, lr, &noise, &r)) != MAV_OK) goto done;
        if (!r.skipped) mav_ema_update(ema, p->value, p->total, mav_ema_decay_at((float)o->ema_decay, step, 1));
        else fprintf(stderr, "%s: step %ld: non-finite loss or gradients, update skipped\n", s->name, step);
        // validation at multiples of val_every and at the last step of the schedule
        double vloss = NAN, met[MAV_RUN_MAX_METRICS];
        int did_val = 0;
        if (val && s->validate && ((o->val_every && step % o->val_every == 0) || step == o->steps)) {
            for (int k = 0; k < MAV_RUN_MAX_METRICS; k++) met[k] = NAN;
            if ((st = s->validate(s->ctx, val, n_val, o, &vloss, met)) != MAV_OK) goto done;
            did_val = 1;
        }
        fprintf(csvf, "%ld,%.17g,%.9g,%.17g,", step, r.loss, (double)lr, r.grad_norm);
        if (did_val) fprintf(csvf, "%.17g", vloss);
        for (int k = 0; k < nm; k++) {
            if (did_val) fprintf(csvf, ",%.9g", met[k]);
            else fputc(',', csvf);
        }
        fputc('\n', csvf);
        fflush(csvf);
        if (!io->quiet && (step % o->log_every == 0 || step == until || did_val)) {
            double el = now_s() - t_start, ips = (step - step0) / (el > 1e-9 ? el : 1e-9);
            char eta[32];
            fmt_eta(eta, sizeof eta, (until - step) / ips);
            fprintf(stderr, "%s step %ld/%ld  loss %.4f  lr %.1e  %.2f it/s  ETA %s", s->name, step, o->steps, r.loss,
                    (double)lr, ips, eta);
            if (did_val) {
                fprintf(stderr, "  val_loss %.4f", vloss);
                const char *nmp = s->metric_names;
                for (int k = 0; k < nm && nmp; k++) {
                    const char *c = strchr(nmp, ',');
                    int len = c ? (int)(c - nmp) : (int)strlen(nmp);
                    fprintf(stderr, "  %.*s %.4f", len, nmp, met[k]);
                    nmp = c ? c + 1 : NULL;
                }
            }
            fputc('\n', stderr);
        }
        if ((o->save_every && step % o->save_every == 0) || step == until) {
            if ((st = save_state(s, o, ckpt, step, ema, mav_prefetch_rng(pf), noise)) != MAV_OK) goto done;
            saved_at = step;
            mav_run_plot(csv, svg);  // a failed plot never stops training
        }
    }
    (void)saved_at;
    fclose(csvf);
    csvf = NULL;
    if ((st = mav_run_plot(csv, svg)) != MAV_OK) goto done;
    if ((st = s->export_model(s->ctx, model, p->value)) != MAV_OK) goto done;
    if ((st = s->export_model(s->ctx, model_ema, ema)) != MAV_OK) goto done;
    if (!io->quiet) fprintf(stderr, "%s: wrote %s, %s, %s, %s\n", s->name, ckpt, model, model_ema, csv);
done:
    if (csvf) fclose(csvf);
    if (pf) mav_prefetch_stop(pf);
    mav_batch_free(&batch);
    if (val) mav_dataset_close(val);
    if (ds) mav_dataset_close(ds);
    free(ema);
    free(ckpt); free(csv); free(svg); free(model); free(model_ema);
    return st;
}
