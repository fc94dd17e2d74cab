/*
 * An Atonomi device in C: derives its public key from a 32-byte seed, signs its
 * activation for an owner, builds a signed ReportInteraction, verifies a device
 * record's proof against a trusted header hash, and measures the stack that signing
 * and proof verification use (by running each on a painted stack of its own).
 *
 *   device pubkey   SEED
 *   device activate SEED CHAIN_ID DEVICE_ID OWNER
 *   device report   SEED CHAIN_ID NONCE DEVICE_ID PEER      (a failed interaction)
 *   device verify   HEADER_HASH HEADER DEVICE_ID RECORD|- PROOF
 *
 * Arguments are hex (CHAIN_ID and NONCE are text); output is one JSON object.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atonomi_device.h"

static size_t unhex(const char *s, uint8_t *out, size_t cap) {
  size_t n = strlen(s);
  if (n % 2 || n / 2 > cap) { fprintf(stderr, "bad hex argument\n"); exit(2); }
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) { fprintf(stderr, "bad hex argument\n"); exit(2); }
    out[i] = (uint8_t)v;
  }
  return n / 2;
}

static void hex(const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
}

static void key32(const char *s, uint8_t out[32]) {
  if (unhex(s, out, 32) != 32) { fprintf(stderr, "expected 32 bytes of hex\n"); exit(2); }
}

static void check(AtonomiStatus s, const char *what) {
  if (s != ATONOMI_OK) { printf("{\"error\":\"%s\",\"status\":%d}\n", what, (int)s); exit(1); }
}

/* Signing on a stack of our own, painted first: the deepest overwritten byte is the
 * peak stack use of the call. */
#define PAINT 0xA5
#define STACK_SIZE (256 * 1024)
struct job { const uint8_t *seed; const char *chain; const uint8_t *device, *owner; uint8_t sig[64]; AtonomiStatus st; };

static void *sign_job(void *p) {
  struct job *j = p;
  j->st = atonomi_sign_activation(j->seed, (const uint8_t *)j->chain, strlen(j->chain), j->device, j->owner, j->sig);
  return NULL;
}

/* Runs fn(arg) on a painted stack of its own; returns the bytes of it that were used. */
static size_t run_on_painted_stack(void *(*fn)(void *), void *arg) {
  uint8_t *stack = aligned_alloc(4096, STACK_SIZE);
  memset(stack, PAINT, STACK_SIZE);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, stack, STACK_SIZE);
  pthread_t t;
  if (pthread_create(&t, &attr, fn, arg) != 0) { fprintf(stderr, "pthread_create\n"); exit(1); }
  pthread_join(t, NULL);
  size_t untouched = 0;
  while (untouched < STACK_SIZE && stack[untouched] == PAINT) untouched++;
  free(stack);
  return STACK_SIZE - untouched; /* includes the thread's own start-up frames */
}

static void *idle_job(void *p) { (void)p; return NULL; }

struct verify_job {
  const uint8_t *trusted, *header, *device, *record, *proof;
  size_t hl, rl, pl;
  AtonomiDeviceView view;
  AtonomiStatus st;
};

static void *verify_job(void *p) {
  struct verify_job *j = p;
  j->st = atonomi_verify_device(j->trusted, j->header, j->hl, j->device, j->record, j->rl, j->proof, j->pl, &j->view);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: see the comment at the top of device.c\n"); return 2; }
  uint8_t seed[32];
  if (!strcmp(argv[1], "pubkey")) {
    key32(argv[2], seed);
    uint8_t pk[32];
    check(atonomi_public_key(seed, pk), "public_key");
    printf("{\"public_key\":\""); hex(pk, 32); printf("\"}\n");
    return 0;
  }
  if (!strcmp(argv[1], "activate") && argc == 6) {
    uint8_t device[32], owner[32];
    key32(argv[2], seed); key32(argv[4], device); key32(argv[5], owner);
    struct job j = { seed, argv[3], device, owner, {0}, ATONOMI_OK };
    size_t used = run_on_painted_stack(sign_job, &j);
    check(j.st, "sign_activation");
    printf("{\"signature\":\""); hex(j.sig, 64);
    printf("\",\"sign_stack_bytes\":%zu,\"thread_baseline_stack_bytes\":%zu}\n", used, run_on_painted_stack(idle_job, NULL));
    return 0;
  }
  if (!strcmp(argv[1], "report") && argc == 7) {
    uint8_t device[32], peer[32], receipt[32] = {0}, tx[512];
    size_t len = 0;
    key32(argv[2], seed); key32(argv[5], device); key32(argv[6], peer);
    uint64_t nonce = strtoull(argv[4], NULL, 10);
    check(atonomi_build_report_interaction(seed, (const uint8_t *)argv[3], strlen(argv[3]), nonce, device, peer, true, receipt, tx, sizeof tx, &len), "build_report_interaction");
    printf("{\"tx\":\""); hex(tx, len); printf("\"}\n");
    return 0;
  }
  if (!strcmp(argv[1], "verify") && argc == 7) {
    static uint8_t header[4096], record[4096], proof[16384];
    uint8_t trusted[32], device[32];
    key32(argv[2], trusted); key32(argv[4], device);
    size_t hl = unhex(argv[3], header, sizeof header);
    size_t rl = strcmp(argv[5], "-") ? unhex(argv[5], record, sizeof record) : 0;
    size_t pl = unhex(argv[6], proof, sizeof proof);
    struct verify_job j = { trusted, header, device, strcmp(argv[5], "-") ? record : NULL, proof, hl, rl, pl, {0}, ATONOMI_OK };
    size_t used = run_on_painted_stack(verify_job, &j);
    check(j.st, "verify_device");
    AtonomiDeviceView v = j.view;
    static const char *names[] = { "not_registered", "registered", "active", "suspended", "revoked" };
    printf("{\"status\":\"%s\",\"manufacturer\":%u,\"owner\":", names[v.status], v.manufacturer);
    if (v.has_owner) { printf("\""); hex(v.owner, 32); printf("\""); } else printf("null");
    printf(",\"verify_stack_bytes\":%zu,\"thread_baseline_stack_bytes\":%zu}\n", used, run_on_painted_stack(idle_job, NULL));
    return 0;
  }
  fprintf(stderr, "usage: see the comment at the top of device.c\n");
  return 2;
}
