// gen_corpus.c — writes the mav-made seed files of fuzz/corpus/ (scripts/fuzz --seed runs it):
// the JSON of every named config, a tiny safetensors file, a learned merges file, tiny images.
// usage: fuzz_gen_corpus CORPUS_DIR
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "media/media.h"
#include "nets/clip.h"
#include "nets/prior.h"
#include "nets/unet_config.h"
#include "text/bpe.h"

static void put(const char *dir, const char *sub, const char *name, const void *data, size_t n, int hint) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    if (hint >= 0) fputc(hint, f);  // fuzz_media's first byte: the name hint
    if (fwrite(data, 1, n, f) != n || fclose(f) != 0) { perror(path); exit(1); }
}

static void put_str(const char *dir, const char *sub, const char *name, char *s) {
    put(dir, sub, name, s, strlen(s), -1);
    free(s);
}

static void *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *d = malloc(*n ? *n : 1);
    if (!d || fread(d, 1, *n, f) != *n) exit(1);
    fclose(f);
    return d;
}

static void check(mav_status s) {
    if (s != MAV_OK) { fprintf(stderr, "gen_corpus: %s\n", mav_last_error()); exit(1); }
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]); return 2; }
    const char *dir = argv[1];
    static const char *const unet_names[] = {"tiny", "bench-decoder", "bench-image", "bench-sr"};
    for (int i = 0; i < 4; i++) {
        mav_unet_config c;
        check(mav_unet_config_named(&c, unet_names[i]));
        put_str(dir, "unet_config", unet_names[i], mav_unet_config_to_json(&c));
    }
    static const char *const clip_names[] = {"tiny", "vit-b-32"};
    for (int i = 0; i < 2; i++) {
        mav_clip_config c;
        check(mav_clip_config_named(&c, clip_names[i]));
        put_str(dir, "clip_config", clip_names[i], mav_clip_config_to_json(&c));
        mav_prior_config p;
        check(mav_prior_config_named(&p, clip_names[i]));
        put_str(dir, "prior_config", clip_names[i], mav_prior_config_to_json(&p));
    }

    // safetensors: F32, F16, BF16, I32 tensors (one scalar-shaped, one empty) and metadata.
    char path[1024];
    snprintf(path, sizeof path, "%s/safetensors/tiny.safetensors", dir);
    float v[6] = {1, -2, 0.5f, 3, -0.25f, 7};
    int32_t ids[3] = {49406, 320, 49407};
    int64_t s23[2] = {2, 3}, s3[1] = {3}, s0[2] = {0, 4};
    mav_st_writer w;
    mav_st_writer_init(&w);
    mav_st_writer_meta(&w, "mav.kind", "unet");
    mav_st_writer_add_f32(&w, "a.weight", 2, s23, v, MAV_F32);
    mav_st_writer_add_f32(&w, "b.half", 1, s3, v, MAV_F16);
    mav_st_writer_add_f32(&w, "c.bf16", 0, NULL, v, MAV_BF16);
    mav_st_writer_add_f32(&w, "d.empty", 2, s0, v, MAV_F32);
    mav_st_writer_add_raw(&w, "tokens", MAV_I32, 1, s3, ids);
    check(mav_st_writer_save(&w, path));
    mav_st_writer_free(&w);

    // Merges learned from a few captions.
    static const char caps[] = "a photo of a cat\na photo of a dog\nthe cat and the dog\ncaf\xc3\xa9 \xf0\x9f\x98\x80\n";
    char *merges = NULL;
    size_t ml = 0;
    int learned = 0;
    check(mav_bpe_train(caps, sizeof caps - 1, 40, &merges, &ml, &learned, NULL));
    put(dir, "bpe_merges", "learned.txt", merges, ml, -1);
    free(merges);

    // Tiny media: 3×2 image, 3-frame 4×4 animation, in every format mav writes; each seed is
    // the hint byte fuzz_media expects (0 png, 1 jpg, 2 webp, 3 gif, 4 mp4) + the file.
    mav_frames f;
    check(mav_frames_alloc(&f, 4, 4, 3, 8));
    for (size_t i = 0; i < (size_t)3 * 4 * 4 * 3; i++) f.rgb[i] = (uint8_t)(i * 37);
    mav_frames one = f;
    one.n = 1;
    static const struct { const char *ext; int hint, anim; } k[] = {
        {"png", 0, 0}, {"jpg", 1, 0}, {"webp", 2, 0}, {"webp", 2, 1}, {"gif", 3, 1}, {"mp4", 4, 1}};
    for (int i = 0; i < 6; i++) {
        char tmp[1024], name[64];
        snprintf(tmp, sizeof tmp, "%s/media/.tmp.%s", dir, k[i].ext);
        check(mav_media_write(tmp, k[i].anim ? &f : &one, NULL));
        size_t n;
        void *d = slurp(tmp, &n);
        remove(tmp);
        snprintf(name, sizeof name, "%s%s", k[i].anim ? "anim." : "still.", k[i].ext);
        put(dir, "media", name, d, n, k[i].hint);
        free(d);
    }
    mav_frames_free(&f);
    return 0;
}
