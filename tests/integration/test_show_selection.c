/* test_show_selection — `hired show-selection` writes a valid PNG whose outlined patch count
 * equals the number of kept tokens it reports (and, per partition, the counts it reports),
 * for several strategies on both fixture models. Runs the real binary; decodes the PNG with
 * stb_image; counts the 14x14 cells whose whole 1-pixel ring is pure red (the documented
 * marking; dropped patches are dimmed to at most 45% so they can never look like one). */
#include "test.h"

#include <spawn.h>
#include <stb/stb_image.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MARGIN 8
#define TITLE_H 28
#define SIZE 336
#define CELL 14

/* Runs argv, captures stdout into buf. Returns the exit status (or -1). */
static int run(char *const argv[], char *buf, size_t len) {
    int fd[2];
    if (pipe(fd)) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while (rc == 0 && got + 1 < len && (r = read(fd[0], buf + got, len - 1 - got)) > 0) got += (size_t)r;
    buf[got] = 0;
    close(fd[0]);
    if (rc) return -1;
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int is_red(const unsigned char *p) { return p[0] == 255 && p[1] == 0 && p[2] == 0; }

/* Cells of partition p whose ring is entirely red. */
static int count_ringed(const unsigned char *img, int w, int p) {
    int ox = MARGIN + p * (SIZE + MARGIN), oy = TITLE_H, n = 0;
    for (int cy = 0; cy < SIZE / CELL; cy++)
        for (int cx = 0; cx < SIZE / CELL; cx++) {
            int x0 = ox + cx * CELL, y0 = oy + cy * CELL, ring = 1;
            for (int i = 0; i < CELL && ring; i++)
                ring = is_red(img + ((size_t)y0 * w + x0 + i) * 3) && is_red(img + ((size_t)(y0 + CELL - 1) * w + x0 + i) * 3) &&
                       is_red(img + ((size_t)(y0 + i) * w + x0) * 3) && is_red(img + ((size_t)(y0 + i) * w + x0 + CELL - 1) * 3);
            n += ring;
        }
    return n;
}

static void check_case(const char *model, const char *image, const char *strategy, const char *budget, int n_parts,
                       int expect_k_min, int expect_k_max) {
    char bin[1024], model_dir[1024], image_path[1024], out[] = "/tmp/hired-show-XXXXXX.png";
    snprintf(bin, sizeof bin, "%s/client/hired", getenv("HIRED_BUILD_DIR"));
    snprintf(model_dir, sizeof model_dir, "%s", test_fixture(model));
    snprintf(image_path, sizeof image_path, "%s", test_fixture(image));
    int fd = mkstemps(out, 4);
    CHECK(fd >= 0);
    close(fd);
    char *argv[] = {bin, "show-selection", "--model", model_dir, "--image", image_path, "--strategy", (char *)strategy,
                    "--budget", (char *)budget, "--out", out, NULL};
    char text[4096];
    int status = run(argv, text, sizeof text);
    CHECK_MSG(status == 0, "%s %s %s: exit %d", model, image, strategy, status);
    int k = -1, total = -1, drawn = -1, summary = -1;
    CHECK_MSG(sscanf(text, "kept %d of %d visual tokens (%d drawn, %d summary)", &k, &total, &drawn, &summary) == 4,
              "unexpected output: %s", text);
    int w, h, c;
    unsigned char *img = stbi_load(out, &w, &h, &c, 3);
    CHECK_MSG(img != NULL, "%s is not a decodable PNG", out);
    if (img) {
        CHECK_EQ_INT(w, n_parts * SIZE + (n_parts + 1) * MARGIN);
        int ringed = 0;
        for (int p = 0; p < n_parts; p++) ringed += count_ringed(img, w, p);
        printf("%s %s %s r=%s: reported kept %d (%d drawn), PNG shows %d outlined\n", model, image, strategy, budget, k,
               drawn, ringed);
        CHECK_EQ_INT(ringed, drawn);
        CHECK_EQ_INT(drawn + summary, k);
        CHECK_MSG(k >= expect_k_min && k <= expect_k_max, "k = %d outside [%d, %d]", k, expect_k_min, expect_k_max);
        stbi_image_free(img);
    }
    unlink(out);
}

int main(void) {
    if (!getenv("HIRED_BUILD_DIR")) {
        fprintf(stderr, "HIRED_BUILD_DIR is not set\n");
        return 1;
    }
    /* NeXT 2x2 (5 partitions), r = 0.2: 288 base + sub-images summing to <= 288 */
    check_case("models/llava-next-tiny", "images/large.jpg", "hired", "0.2", 5, 576 - 4, 576);
    check_case("models/llava-next-tiny", "images/large.jpg", "hired", "0.1", 5, 288 - 4, 288);
    check_case("models/llava-next-tiny", "images/hubble_wide.jpg", "hired", "0.4", 4, 921 - 3, 921);
    check_case("models/llava-next-tiny", "images/large.jpg", "none", "1", 5, 2880, 2880);
    check_case("models/llava-next-tiny", "images/large.jpg", "spatial", "0.4", 5, 5 * 288, 5 * 288);
    check_case("models/llava-next-tiny", "images/large.jpg", "prumerge+", "1", 5, 10, 2880);
    /* LLaVA-1.5: one partition, top int(576 r) */
    check_case("models/llava15-tiny", "images/astronaut.png", "hired", "0.2", 1, 115, 115);
    return test_summary();
}
